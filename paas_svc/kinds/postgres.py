"""The postgres kind: PostgreSQL. A real login over TCP (SCRAM-SHA-256 only, Ready once the
server's signature verified) as its readiness probe;
pg_dump / pg_restore as its backup; user, password and db as its credentials."""

from __future__ import annotations

import re

from paas_svc.errors import Conflict
from paas_svc.kinds.protocols import connect
from paas_svc.kinds.protocols import postgres as wire
from paas_svc.kinds.strategy import BackupFailed, CheckedStream, check_magic, first_line, single_file_tar, temp_name

NAME = "postgres"
CREDENTIALS: tuple[str, ...] = ("user", "password", "db")
RESTORE_IS_ATOMIC = True  # pg_restore --single-transaction: a failed restore leaves the data as it was
# `svc restore` fills a new volume (a server of the service's image on it) and swaps it in; the old
# volume is the safety copy (usecases/data.py). No safety dump first.
RESTORE_INTO_NEW_VOLUME = True
# The server that fills a new volume: nothing reads its WAL (no replica, no archive: the volume is
# swapped in after a clean shutdown), so the table data pg_restore --single-transaction copies
# into tables it created in that transaction skips the WAL and is fsynced at commit instead
# (wal_level=minimal). fsync stays on: the restored data is durable when pg_restore returns.
RESTORE_SERVER_SETTINGS = ("wal_level=minimal", "max_wal_senders=0", "archive_mode=off",
                           "maintenance_work_mem=256MB", "max_wal_size=4GB", "checkpoint_timeout=30min")


def restore_server_command(command: list[str] | None) -> list[str] | None:
    """The command of the server that fills a new volume: the service's own (the image's
    `postgres` when it has none) with RESTORE_SERVER_SETTINGS; a command that does not start
    `postgres` is left as it is."""
    if command is None:
        command = ["postgres"]
    elif command and command[0].startswith("-"):
        command = ["postgres", *command]
    if not command or command[0].rsplit("/", 1)[-1] != "postgres":
        return command
    settings = [part for setting in RESTORE_SERVER_SETTINGS for part in ("-c", setting)]
    return [*command, *settings]


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


def check_upgrade(engine, service, new_image: str, labels: dict[str, str]) -> tuple[int | None, int | None]:
    """The upgrade hook: refuse a major-version change on the same data dir (PostgreSQL cannot
    open it). Returns (the data dir's major, the new image's major), None where unknown: the
    image's tag, else its `postgres --version` in a throwaway container labelled `labels`."""
    read = engine.exec_capture(service.container_name, ["sh", "-c", f'cat "${{PGDATA:-{service.spec["volume"]}}}/PG_VERSION"'])
    text = read.stdout.decode("utf-8", errors="replace").strip()
    data_major = int(text) if read.exit_code == 0 and text.isdigit() else None
    new_major = major_from_image(new_image)
    if new_major is None:
        version = engine.run_once(new_image, ["--version"], ["postgres"], labels)
        new_major = major_from_version_output(version.stdout.decode("utf-8", errors="replace"))
    if data_major is not None and new_major is not None and data_major != new_major:
        new_slug = f"{service.slug}-pg{new_major}"
        file = f"{service.slug}.pgdump"
        raise Conflict(
            f"{service.slug}'s data directory is PostgreSQL {data_major}; {new_image} is PostgreSQL {new_major}, "
            f"which cannot open it (a major-version change needs a dump and restore). Nothing was changed.\n"
            f"Move the data to a new service instead:\n"
            f"  1. paas svc backup {service.slug} --env {service.env} -o {file}\n"
            f"  2. paas svc add {new_slug} --env {service.env} --template {service.template} --image {new_image}\n"
            f"  3. paas svc restore {new_slug} {file} --env {service.env} --yes\n"
            f"  4. point the app at {new_slug.upper().replace('-', '_')}_URL, then `paas svc rm {service.slug} --env {service.env} --purge`",
            hint="To change the image within the same major version, pass an image of PostgreSQL "
                 f"{data_major} to --image.")
    return data_major, new_major


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

    def restore_new_volume(self, engine, ctx, backup):
        """Into the server of a new volume (usecases/data.py, before the swap): the payload streams
        into pg_restore's stdin, no staged copy, hashed on the way; a file changed since its check
        fails the restore, and the volume is then never swapped in."""
        creds = ctx.credentials
        with CheckedStream(backup) as payload:
            result = engine.exec_stdin(ctx.container, [
                "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
                "-U", creds["user"], "-d", creds["db"]], payload)
            payload.check()
        if result.exit_code != 0:
            raise BackupFailed(f"pg_restore failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")

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
