"""The postgres kind."""

NAME = "postgres"
CREDENTIALS: tuple[str, ...] = ("user", "password", "db")
PROTOCOL_PROBE = True
NATIVE_BACKUP = True
