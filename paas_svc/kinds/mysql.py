"""The mysql kind."""

NAME = "mysql"
CREDENTIALS: tuple[str, ...] = ("user", "password", "db")
PROTOCOL_PROBE = True
NATIVE_BACKUP = True
