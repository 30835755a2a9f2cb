"""The s3 kind: S3-compatible object storage (MinIO). Readiness is the template's HTTP
health check; backup is the volume archive (generic); user and password are its credentials."""

NAME = "s3"
CREDENTIALS: tuple[str, ...] = ("user", "password")
probe = None
BACKUP = None
