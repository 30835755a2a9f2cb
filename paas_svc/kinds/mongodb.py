"""The mongodb kind: MongoDB. A SCRAM-SHA-256 login as the root user then `ping` as its
readiness probe; mongodump / mongorestore as its backup; user and password (the root user,
authSource admin) as its credentials."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, BinaryIO

from paas_svc.kinds.protocols import connect
from paas_svc.kinds.protocols import mongo as wire
from paas_svc.kinds.strategy import BackupFailed, check_magic, first_line, single_file_tar, temp_name

if TYPE_CHECKING:
    from paas_svc.engine.sdk import ExecResult

NAME = "mongodb"
CREDENTIALS: tuple[str, ...] = ("user", "password")
PARTIAL_RESTORE = ("mongorestore --drop is not transactional: some collections may already be dropped or replaced "
                   "by the backup's, others not")


def probe(host: str, port: int, credentials: dict[str, str]) -> str:
    with connect(host, port) as sock:
        wire.login_and_ping(sock, credentials.get("user", ""), credentials.get("password", ""))
    return "authenticated ping answered ok"


MONGO_CONFIG_VARIABLE = "PAAS_MONGO_CONFIG"
MONGO_WITH_CONFIG_SCRIPT = (
    'umask 077; conf=$(mktemp) || exit 97; '
    'trap \'rm -f "$conf"\' EXIT; trap \'rm -f "$conf"; exit 143\' HUP INT TERM; '
    f'printf \'%s\\n\' "${MONGO_CONFIG_VARIABLE}" > "$conf" || exit 97; unset {MONGO_CONFIG_VARIABLE}; '
    '"$@" --config "$conf"'
)


def mongo_config_text(password: str) -> str:
    """The tools' YAML config: a JSON string is a valid YAML double-quoted scalar."""
    return "password: " + json.dumps(password)


class MongoStrategy:
    kind = "mongodb"
    extension = "mongoarchive"
    needs_running = True
    replaces_volume = False

    def _run(self, engine, ctx, tool_args: list[str], sink: BinaryIO | None = None) -> ExecResult:
        """A mongo tool as the root user; the password only in the exec's environment and a
        short-lived 0600 file in the container (see MONGO_WITH_CONFIG_SCRIPT)."""
        command = ["sh", "-c", MONGO_WITH_CONFIG_SCRIPT, "paas-mongo-tool", *tool_args,
                   "--username", ctx.credentials["user"], "--authenticationDatabase", "admin"]
        environment = {MONGO_CONFIG_VARIABLE: mongo_config_text(ctx.credentials["password"])}
        if sink is None:
            return engine.exec_capture(ctx.container, command, environment=environment)
        return engine.exec_stream(ctx.container, command, sink, environment=environment)

    def tool_version(self, engine, ctx):
        return first_line(engine.exec_capture(ctx.container, ["mongodump", "--version"]), "mongodump")

    def backup(self, engine, ctx, sink):
        result = self._run(engine, ctx, ["mongodump", "--archive", "--gzip"], sink)
        if result.exit_code != 0:
            raise BackupFailed(f"mongodump failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")

    def check_payload(self, backup, mount_path):
        check_magic(backup, b"\x1f\x8b", "a gzip mongodump archive")

    def restore(self, engine, ctx, backup):
        name = temp_name("mongoarchive")
        with backup.open_payload() as payload:
            engine.put_archive(ctx.container, "/tmp", single_file_tar(name, payload, backup.payload_bytes, scratch_dir=ctx.scratch_dir))
        try:
            # admin.* holds the users: restoring it would replace this service's credentials
            # with the source's (a clone must keep its own).
            result = self._run(engine, ctx, ["mongorestore", f"--archive=/tmp/{name}", "--gzip", "--drop", "--nsExclude=admin.*"])
        finally:
            engine.exec_capture(ctx.container, ["rm", "-f", f"/tmp/{name}"])
        if result.exit_code != 0:
            raise BackupFailed(f"mongorestore failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")


BACKUP = MongoStrategy()


# -- import: mongodump of a database paas does not manage -----------------------------------

IMPORT_SCHEMES: tuple[str, ...] = ("mongodb", "mongodb+srv")


def mongo_uri_config_text(uri: str) -> str:
    """The tools' YAML config holding the whole source URI (its password included)."""
    return "uri: " + json.dumps(uri)


def import_dump(engine, ctx, source, sink) -> None:
    """`svc import`: `mongodump --archive --gzip` of the source run in the service's own
    container, written to `sink` (the payload of a backup of this kind, restored by
    BACKUP.restore, which leaves admin.* alone). The URI, password and all, reaches mongodump
    only through its --config file (MONGO_WITH_CONFIG_SCRIPT): no argv holds any of it."""
    command = ["sh", "-c", MONGO_WITH_CONFIG_SCRIPT, "paas-mongo-tool", "mongodump", "--archive", "--gzip"]
    environment = {MONGO_CONFIG_VARIABLE: mongo_uri_config_text(source.text)}
    result = engine.exec_stream(ctx.container, command, sink, environment=environment)
    if result.exit_code == 127:  # the shell found no mongodump
        raise BackupFailed(f"The image of {ctx.service.slug} ({ctx.service.image}) has no mongodump: {result.error_text()}",
                           hint="Run the service on an image with the MongoDB database tools (the official mongo images have them).")
    if result.exit_code != 0:
        raise BackupFailed(f"mongodump could not read the source (exit {result.exit_code}): {result.error_text()}")
