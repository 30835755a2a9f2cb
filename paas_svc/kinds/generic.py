"""The generic kind."""

NAME = "generic"
CREDENTIALS: tuple[str, ...] = ()
PROTOCOL_PROBE = False
NATIVE_BACKUP = False
