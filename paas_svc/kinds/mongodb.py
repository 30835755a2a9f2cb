"""The mongodb kind."""

NAME = "mongodb"
CREDENTIALS: tuple[str, ...] = ("user", "password")
PROTOCOL_PROBE = True
NATIVE_BACKUP = True
