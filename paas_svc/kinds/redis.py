"""The redis kind."""

NAME = "redis"
CREDENTIALS: tuple[str, ...] = ("password",)
PROTOCOL_PROBE = True
NATIVE_BACKUP = True
