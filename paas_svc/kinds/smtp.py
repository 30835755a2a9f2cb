"""The smtp kind: mail catchers (Mailpit). Readiness is the template's HTTP check on the
web port; backup is the volume archive (generic); no credentials."""

NAME = "smtp"
CREDENTIALS: tuple[str, ...] = ()
probe = None
BACKUP = None
