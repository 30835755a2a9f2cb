"""The amqp kind."""

NAME = "amqp"
CREDENTIALS: tuple[str, ...] = ("user", "password")
PROTOCOL_PROBE = True
NATIVE_BACKUP = False
