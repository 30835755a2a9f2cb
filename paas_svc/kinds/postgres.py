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
# `svc restore` fills a NEW DATABASE in the service's own server and swaps it with the app's
# database by renaming both in one transaction; the old database, renamed, is the safety copy
# (usecases/data.py). No safety dump first, no second server to initialise, no restart, and the
# cluster (its WAL, so point-in-time recovery) goes on. The volume swap stays for what is not a
# logical restore (RESTORE_INTO_NEW_VOLUME: a whole cluster, e.g. point-in-time recovery).
RESTORE_INTO_NEW_DATABASE = True
RESTORE_INTO_NEW_VOLUME = True
MAX_BASE_CHARS = 40  # of the app database's name in the two names derived from it (63 at most)
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

# -- TLS (see paas_svc/usecases/tls.py) ------------------------------------------------------
SERVER_COMMAND = ["postgres"]  # the images' own CMD, which the TLS arguments follow
# The server refuses a key readable by others: 0600, owned by the user it runs as (the user
# name is looked up in the image's /etc/passwd: 999 in postgres:16, 70 in -alpine).
TLS_FILE_OWNER = "postgres"
TLS_DIR = "/paas-tls"
# `required`: TCP logins only over TLS (hostssl); the local socket, which backups, `connect`
# and point-in-time recovery's pg_basebackup (a replication connection) use inside the
# container, stays as the image made it (trust).
REQUIRED_HBA = ("# paas: TLS required. Written by paas with the server's certificate.\n"
                "local all all trust\n"
                "local replication all trust\n"
                "hostssl all all all scram-sha-256\n")


def tls_server(mode: str) -> tuple[list[str], dict[str, str]]:
    """The server arguments that turn TLS on: the certificate files, and for `required` an
    hba file that accepts TCP only over TLS."""
    arguments = ["-c", "ssl=on", "-c", f"ssl_cert_file={TLS_DIR}/server.crt", "-c", f"ssl_key_file={TLS_DIR}/server.key",
                 "-c", f"ssl_ca_file={TLS_DIR}/ca.crt"]
    if mode == "required":
        arguments += ["-c", f"hba_file={TLS_DIR}/pg_hba.conf"]
    return arguments, {}


def tls_files(mode: str) -> dict[str, bytes]:
    """Files beside the certificates (owned by TLS_FILE_OWNER, 0600)."""
    return {"pg_hba.conf": REQUIRED_HBA.encode()} if mode == "required" else {}


def tls_url(url: str, mode: str, ca_path: str) -> str:
    """libpq's full verification (psycopg, SQLAlchemy, asyncpg, pgx, node-postgres read it)."""
    return f"{url}{'&' if '?' in url else '?'}sslmode=verify-full&sslrootcert={ca_path}"


def tls_reload(engine, container: str, credentials: dict[str, str]) -> bool:
    """Pick up renewed certificate files without a restart (pg_reload_conf re-reads them)."""
    result = engine.exec_capture(container, ["psql", "-U", credentials.get("user", "postgres"), "-d",
                                             credentials.get("db", "postgres"), "-Atc", "SELECT pg_reload_conf()"])
    return result.exit_code == 0 and result.stdout.strip() == b"t"


def probe(host: str, port: int, credentials: dict[str, str], ssl_context=None) -> str:
    with connect(host, port) as sock:
        channel = wire.start_tls(sock, ssl_context, host) if ssl_context is not None else sock
        try:
            wire.login(channel, credentials.get("user", "postgres"), credentials.get("password", ""), credentials.get("db", "postgres"))
        finally:
            if channel is not sock:
                channel.close()
    return f"logged in over {'TLS (certificate verified)' if ssl_context else 'TCP'} (SCRAM-SHA-256, server verified)"


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


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def database_names(db: str, token: str) -> tuple[str, str]:
    """(the new database a restore fills, the name the app's database gets as the safety copy)."""
    base = db[:MAX_BASE_CHARS]
    return f"{base}_restore_{token}", f"{base}_prerestore_{token}"


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

    # -- a restore into a new database, swapped with the app's (usecases/data.py) ---------------

    def psql(self, engine, ctx, *statements: str) -> str:
        """Each statement on its own (CREATE/DROP DATABASE cannot run in a transaction block),
        as the service's user over the container's local socket, connected to `postgres`."""
        command = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", ctx.credentials["user"], "-d", "postgres"]
        for statement in statements:
            command += ["-c", statement]
        result = engine.exec_capture(ctx.container, command)
        if result.exit_code != 0:
            raise BackupFailed(f"psql failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")
        return result.stdout.decode("utf-8", errors="replace").strip()

    def databases(self, engine, ctx, *names: str) -> set[str]:
        """Which of `names` exist."""
        listed = ", ".join(_literal(name) for name in names)
        found = self.psql(engine, ctx, f"SELECT datname FROM pg_database WHERE datname IN ({listed})")
        return set(found.splitlines()) & set(names)

    def create_database(self, engine, ctx, name: str) -> None:
        self.psql(engine, ctx, f"CREATE DATABASE {_ident(name)} OWNER {_ident(ctx.credentials['user'])}")

    def restore_into_database(self, engine, ctx, backup, name: str) -> None:
        """The payload streams into pg_restore's stdin (no staged copy), hashed on the way: a file
        changed since its check fails here, before the swap, so nothing the app uses changed."""
        with CheckedStream(backup) as payload:
            result = engine.exec_stdin(ctx.container, [
                "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
                "-U", ctx.credentials["user"], "-d", name], payload)
            payload.check()
        if result.exit_code != 0:
            raise BackupFailed(f"pg_restore failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")

    def swap_databases(self, engine, ctx, new: str, safety: str) -> None:
        """The app's database becomes `safety` (no connections allowed: a copy, not a database
        to use) and `new` becomes the app's, in ONE transaction. The app's sessions are ended
        first (new ones are refused meanwhile); they reconnect to the restored data."""
        db = ctx.credentials["db"]
        self.psql(engine, ctx,
                  f"ALTER DATABASE {_ident(db)} WITH ALLOW_CONNECTIONS false",
                  f"SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
                  f"WHERE datname = {_literal(db)} AND pid <> pg_backend_pid()",
                  f"BEGIN; ALTER DATABASE {_ident(db)} RENAME TO {_ident(safety)}; "
                  f"ALTER DATABASE {_ident(new)} RENAME TO {_ident(db)}; COMMIT")

    def settle_database_restore(self, engine, ctx, new: str, safety: str) -> bool:
        """After a restore into `new` that failed or was interrupted, whatever step it reached:
        True when the swap had committed (the restored data is the app's; nothing to undo);
        else `new` is dropped and the app's database (never touched) accepts connections again."""
        db = ctx.credentials["db"]
        found = self.databases(engine, ctx, new, safety, db)
        if new not in found and safety in found and db in found:
            return True
        statements = [f"DROP DATABASE IF EXISTS {_ident(new)} WITH (FORCE)"]
        if db in found:
            statements.append(f"ALTER DATABASE {_ident(db)} WITH ALLOW_CONNECTIONS true")
        self.psql(engine, ctx, *statements)
        return False

    def drop_database(self, engine, ctx, name: str) -> None:
        self.psql(engine, ctx, f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")

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


# -- import: pg_dump of a database paas does not manage -------------------------------------

IMPORT_SCHEMES: tuple[str, ...] = ("postgres", "postgresql")
IMPORT_DEFAULT_PORT = 5432
IMPORT_CONNECT_TIMEOUT_SECONDS = 10


def conninfo_quote(value: str) -> str:
    """A libpq key=value connection string value: single-quoted, `\\` and `'` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def import_dump(engine, ctx, source, sink) -> None:
    """`svc import`: `pg_dump -Fc` of the foreign database `source` (host, port, user, password,
    database, query: a parsed URL) run in the service's own container, written to `sink`: the
    very payload of a paas backup of this kind, restored by BACKUP.restore. The password goes
    in PGPASSWORD (the exec's environment), the rest in a key=value connection string on
    pg_dump's command line; query parameters (sslmode=require, ...) are libpq keywords."""
    options = {"host": source.host, "port": str(source.port or IMPORT_DEFAULT_PORT), "user": source.user or "postgres",
               "dbname": source.database or source.user or "postgres",
               "connect_timeout": str(IMPORT_CONNECT_TIMEOUT_SECONDS), **source.query}
    conninfo = " ".join(f"{key}={conninfo_quote(value)}" for key, value in options.items())
    environment = {"PGPASSWORD": source.password} if source.password else {}
    result = engine.exec_stream(ctx.container, ["pg_dump", "-Fc", "--no-acl", "--no-owner", "--dbname", conninfo], sink,
                                environment=environment)
    if result.exit_code != 0:
        raise BackupFailed(f"pg_dump could not read the source database (exit {result.exit_code}): {result.error_text()}")


# -- continuous archiving (point-in-time recovery): the facts of the kind --------------------
# Nothing beyond the official image runs in the container. archive_command compresses each
# closed WAL segment into a spool folder on the service's own volume (so it works on remote
# engines too, where a host bind mount would not); the host side (`backup run-due`) ships the
# spool, encrypted, to the destination and removes what it shipped. The spool is bounded: when
# it is full archive_command fails, PostgreSQL keeps the segment in pg_wal and retries it, so
# nothing is lost and the database keeps running.

WAL_SPOOL_DIR = "paas_wal_spool"  # in the data directory: the volume is the only mount a service has
WAL_RESTORE_DIR = "paas_wal_restore"  # the segments a recovery replays, removed once it is done
ARCHIVE_TIMEOUT_SECONDS = 60  # an idle database with writes still closes a segment within a minute
SPOOL_LIMIT_BYTES = 1024 * 1024 * 1024  # compressed segments waiting for the destination
ARCHIVE_SETTINGS = ("archive_mode", "archive_command", "archive_timeout", "wal_level")


def archive_command(limit_bytes: int = SPOOL_LIMIT_BYTES) -> str:
    """Run by PostgreSQL (sh, in the data directory) for each closed segment: refuse (exit 1, so
    it is retried and kept in pg_wal) when the spool is full, else gzip it in under a temporary
    name and rename it, so the host never ships half a file."""
    spool, limit_kib = WAL_SPOOL_DIR, limit_bytes // 1024
    return (f"mkdir -p {spool} && used=$(du -sk {spool} | cut -f1) && "
            f"if [ \"$used\" -ge {limit_kib} ]; then echo \"paas: WAL spool full ($used KiB)\" >&2; exit 1; fi && "
            f"gzip -1 -c %p > {spool}/%f.gz.part && mv -f {spool}/%f.gz.part {spool}/%f.gz")


def archive_settings(limit_bytes: int = SPOOL_LIMIT_BYTES) -> dict[str, str]:
    return {"archive_mode": "on", "archive_command": archive_command(limit_bytes),
            "archive_timeout": str(ARCHIVE_TIMEOUT_SECONDS), "wal_level": "replica"}


def psql(engine, container: str, credentials: dict[str, str], sql: str) -> str:
    """One statement through psql in the container (local socket); its unaligned output."""
    result = engine.exec_capture(container, ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", credentials["user"],
                                             "-d", credentials["db"], "-Atc", sql])
    if result.exit_code != 0:
        raise BackupFailed(f"psql failed in {container}: {result.error_text()}")
    return result.stdout.decode("utf-8", errors="replace").strip()


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def set_archiving(engine, container: str, credentials: dict[str, str], settings: dict[str, str] | None) -> bool:
    """Turn WAL archiving on (`settings`) or off (None) with ALTER SYSTEM: kept in the data
    directory (postgresql.auto.conf), so a re-created container keeps it. True when the server
    must restart for it (archive_mode and wal_level are read at start only)."""
    before = {name: psql(engine, container, credentials, f"SHOW {name}") for name in ("archive_mode", "wal_level")}
    for name in ARCHIVE_SETTINGS:
        if settings is None:
            psql(engine, container, credentials, f"ALTER SYSTEM RESET {name}")
        else:
            psql(engine, container, credentials, f"ALTER SYSTEM SET {name} = {sql_literal(settings[name])}")
    psql(engine, container, credentials, "SELECT pg_reload_conf()")
    if settings is None:
        return before["archive_mode"] != "off"
    return before["archive_mode"] != "on" or before["wal_level"] == "minimal"


def current_wal_file(engine, container: str, credentials: dict[str, str]) -> str:
    return psql(engine, container, credentials, "SELECT pg_walfile_name(pg_current_wal_lsn())")


def archiver_state(engine, container: str, credentials: dict[str, str]) -> dict:
    """pg_stat_archiver: last archived and last failed segment and time (UTC, ISO 8601), the failure count."""
    row = psql(engine, container, credentials,
               "SELECT coalesce(last_archived_wal, ''), coalesce(to_char(last_archived_time AT TIME ZONE 'UTC', "
               "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), failed_count, coalesce(last_failed_wal, ''), "
               "coalesce(to_char(last_failed_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
               "current_setting('archive_mode') FROM pg_stat_archiver")
    parts = row.split("|")
    if len(parts) != 6:
        raise BackupFailed(f"Unexpected answer from pg_stat_archiver in {container}: {row!r}")
    return {"last_archived_wal": parts[0] or None, "last_archived_at": parts[1] or None, "failed_count": int(parts[2] or 0),
            "last_failed_wal": parts[3] or None, "last_failed_at": parts[4] or None, "archive_mode": parts[5]}


def base_backup_command(credentials: dict[str, str]) -> list[str]:
    """A base backup as one gzipped tar on stdout (single tablespace). -X none: the WAL it needs
    comes from the archive (PostgreSQL waits for the last segment to be archived before it ends)."""
    return ["pg_basebackup", "-D", "-", "-F", "t", "-X", "none", "-c", "fast", "-z", "-Z", "1", "-w", "-U", credentials["user"]]


def recovery_command(data_dir: str, target_time: str | None, archive: bool) -> list[str]:
    """The container command of a recovery: clear the copied spool (segments shipped already),
    then the image's entrypoint with the recovery settings; `target_time` None: to the end of
    the archive. Promotes at the target; the transactions committed before it are kept
    (recovery_target_inclusive off: one committed at exactly that time is not)."""
    restore = (f'f={data_dir}/{WAL_RESTORE_DIR}/%f.gz; [ -f "$f" ] && gunzip -c "$f" > "%p"')
    settings = [f"restore_command={restore}", "recovery_target_action=promote", "recovery_target_timeline=latest"]
    if target_time is not None:
        settings += [f"recovery_target_time={target_time}", "recovery_target_inclusive=off"]
    if not archive:
        settings.append("archive_mode=off")
    arguments = ["postgres"]
    for setting in settings:
        arguments += ["-c", setting]
    script = f'rm -rf "{data_dir}/{WAL_SPOOL_DIR}" "{data_dir}/postmaster.pid"; exec docker-entrypoint.sh "$@"'
    return ["sh", "-c", script, "sh", *arguments]


def in_recovery(engine, container: str, credentials: dict[str, str]) -> bool | None:
    """True while replaying, False once promoted, None when the server does not answer yet."""
    result = engine.exec_capture(container, ["psql", "-X", "-U", credentials["user"], "-d", credentials["db"],
                                             "-Atc", "SELECT pg_is_in_recovery()"])
    text = result.stdout.decode("utf-8", errors="replace").strip()
    return {"t": True, "f": False}.get(text) if result.exit_code == 0 else None


def set_password(engine, container: str, credentials: dict[str, str]) -> None:
    """Give the service's user the service's password in a recovered cluster (a physical copy
    carries the roles of the archive, whose password another home may not know). The statement
    goes through psql's stdin: the password is on no command line."""
    import io

    user = credentials["user"].replace('"', '""')
    sql = f'ALTER ROLE "{user}" WITH PASSWORD {sql_literal(credentials["password"])};\n'.encode()
    result = engine.exec_stdin(container, ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", credentials["user"],
                                           "-d", credentials["db"]], io.BytesIO(sql))
    if result.exit_code != 0:
        raise BackupFailed(f"Setting the service's password in the recovered copy failed: {result.error_text()}")
