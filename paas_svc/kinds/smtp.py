"""The smtp kind."""

NAME = "smtp"
CREDENTIALS: tuple[str, ...] = ()
PROTOCOL_PROBE = False
NATIVE_BACKUP = False
