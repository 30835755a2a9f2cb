"""The postgres kind: PostgreSQL. A real login over TCP (SCRAM-SHA-256 only, Ready once the
server's signature verified) as its readiness probe;
pg_dump / pg_restore as its backup; user, password and db as its credentials."""

from __future__ import annotations

import re

from paas_svc.kinds.strategy import BackupFailed, check_magic, first_line, single_file_tar, temp_name
from paas_svc.kinds.protocols import postgres as wire
from paas_svc.kinds.protocols import connect

NAME = "postgres"
CREDENTIALS: tuple[str, ...] = ("user", "password", "db")


def probe(host: str, port: int, credentials: dict[str, str]) -> str:
    with connect(host, port) as sock:
        wire.login(sock, credentials.get("user", "postgres"), credentials.get("password", ""), credentials.get("db", "postgres"))
    return "logged in over TCP (SCRAM-SHA-256, server verified)"


def sanity_check(engine, ctx) -> str:
    """After a restore (`backup verify`): the number of user tables, counted by psql in the container."""
    creds = ctx.credentials
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    result = engine.exec_capture(ctx.container, ["psql", "-U", creds["user"], "-d", creds["db"], "-Atc", sql])
    text = result.stdout.decode("utf-8", errors="replace").strip()
    if result.exit_code != 0 or not text.isdigit():
        raise BackupFailed(f"psql could not count the tables: {result.error_text() if result.exit_code else text}")
    return f"{text} tables"


def major_from_image(image: str) -> int | None:
    """`postgres:16-alpine` -> 16, `registry:5000/postgres:17.2` -> 17; None when the tag says nothing."""
    from docker.utils import parse_repository_tag

    if "@" in image:
        image = image.split("@", 1)[0]
    _, tag = parse_repository_tag(image)
    match = re.match(r"^(\d+)(?:$|[._-])", tag or "")
    return int(match.group(1)) if match else None


def major_from_version_output(text: str) -> int | None:
    """`postgres (PostgreSQL) 15.18 (Debian ...)` -> 15."""
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", text)
    return int(match.group(1)) if match else None


class PostgresStrategy:
    kind = "postgres"
    extension = "pgdump"
    needs_running = True
    replaces_volume = False

    def tool_version(self, engine, ctx):
        return first_line(engine.exec_capture(ctx.container, ["pg_dump", "--version"]), "pg_dump")

    def backup(self, engine, ctx, sink):
        creds = ctx.credentials
        result = engine.exec_stream(ctx.container, ["pg_dump", "-Fc", "--no-acl", "--no-owner", "-U", creds["user"], creds["db"]], sink)
        if result.exit_code != 0:
            raise BackupFailed(f"pg_dump failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")

    def check_payload(self, backup, mount_path):
        check_magic(backup, b"PGDMP", "a pg_dump custom-format archive")

    def restore(self, engine, ctx, backup):
        creds = ctx.credentials
        name = temp_name("pgdump")
        with backup.open_payload() as payload:
            engine.put_archive(ctx.container, "/tmp", single_file_tar(name, payload, backup.payload_bytes, scratch_dir=ctx.scratch_dir))
        try:
            # One transaction: if anything fails, the database is left exactly as it was.
            result = engine.exec_capture(ctx.container, [
                "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                "-U", creds["user"], "-d", creds["db"], f"/tmp/{name}"])
        finally:
            engine.exec_capture(ctx.container, ["rm", "-f", f"/tmp/{name}"])
        if result.exit_code != 0:
            raise BackupFailed(f"pg_restore failed in {ctx.container} (exit {result.exit_code}); the database is unchanged: "
                               f"{result.error_text()}")


BACKUP = PostgresStrategy()
