"""The meilisearch kind."""

NAME = "meilisearch"
CREDENTIALS: tuple[str, ...] = ("key",)
PROTOCOL_PROBE = False
NATIVE_BACKUP = True
