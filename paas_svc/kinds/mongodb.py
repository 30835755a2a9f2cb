"""The mongodb kind: MongoDB. A SCRAM-SHA-256 login as the root user then `ping` as its
readiness probe; mongodump / mongorestore as its backup; user and password (the root user,
authSource admin) as its credentials."""

from __future__ import annotations

from paas_svc.backup import BackupFailed, check_magic, first_line, single_file_tar, temp_name
from paas_svc.protocols import connect
from paas_svc.protocols import mongo as wire

NAME = "mongodb"
CREDENTIALS: tuple[str, ...] = ("user", "password")


def probe(host: str, port: int, credentials: dict[str, str]) -> str:
    with connect(host, port) as sock:
        wire.login_and_ping(sock, credentials.get("user", ""), credentials.get("password", ""))
    return "authenticated ping answered ok"


class MongoStrategy:
    kind = "mongodb"
    extension = "mongoarchive"
    needs_running = True
    replaces_volume = False

    def _auth(self, ctx) -> list[str]:
        return ["-u", ctx.credentials["user"], "-p", ctx.credentials["password"], "--authenticationDatabase", "admin"]

    def tool_version(self, engine, ctx):
        return first_line(engine.exec_capture(ctx.container, ["mongodump", "--version"]), "mongodump")

    def backup(self, engine, ctx, sink):
        result = engine.exec_stream(ctx.container, ["mongodump", "--archive", "--gzip", *self._auth(ctx)], sink)
        if result.exit_code != 0:
            raise BackupFailed(f"mongodump failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")

    def check_payload(self, backup, mount_path):
        check_magic(backup, b"\x1f\x8b", "a gzip mongodump archive")

    def restore(self, engine, ctx, backup):
        name = temp_name("mongoarchive")
        with backup.open_payload() as payload:
            engine.put_archive(ctx.container, "/tmp", single_file_tar(name, payload, backup.payload_bytes))
        try:
            # admin.* holds the users: restoring it would replace this service's credentials
            # with the source's (a clone must keep its own).
            result = engine.exec_capture(ctx.container, [
                "mongorestore", f"--archive=/tmp/{name}", "--gzip", "--drop", "--nsExclude=admin.*", *self._auth(ctx)])
        finally:
            engine.exec_capture(ctx.container, ["rm", "-f", f"/tmp/{name}"])
        if result.exit_code != 0:
            raise BackupFailed(f"mongorestore failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")


BACKUP = MongoStrategy()
