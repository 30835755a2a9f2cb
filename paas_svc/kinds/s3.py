"""The s3 kind."""

NAME = "s3"
CREDENTIALS: tuple[str, ...] = ("user", "password")
PROTOCOL_PROBE = False
NATIVE_BACKUP = False
