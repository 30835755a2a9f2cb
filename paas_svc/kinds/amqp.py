"""The amqp kind: RabbitMQ (AMQP 0-9-1). A real AMQP handshake with PLAIN login as the app
user, opening its virtual host, is the readiness probe; user and password (and an optional
vhost) are its credentials.

Backup: the volume, archived with the broker stopped, not an export of the definitions.
Definitions (GET /api/definitions, `rabbitmqctl export_definitions`) hold exchanges,
queues, bindings, users and policies but no messages, and need the management API or a
running node; the volume holds all of that AND every persistent message, and a stopped
broker has flushed them. The volume is only readable by a node of the same name, so
templates of this kind fix the container hostname (rabbit@<hostname>): the same for every
service, so a backup restores into another service (a clone) too. A restored volume brings
the source's users, so after the restore the service's own user gets its own password again
(`rabbitmqctl change_password`, the password on stdin, never on a command line), or is
created with full rights on "/" when the source had no such user.
"""

from __future__ import annotations

import io
import os
import time

from paas_svc.kinds.generic import VolumeArchiveStrategy
from paas_svc.kinds.protocols import amqp as wire
from paas_svc.kinds.protocols import connect
from paas_svc.kinds.strategy import BackupFailed, checked_copy, load_into_fresh_volume

NAME = "amqp"
CREDENTIALS: tuple[str, ...] = ("user", "password")
STARTUP_TIMEOUT_SECONDS = 300


def probe(host: str, port: int, credentials: dict[str, str]) -> str:
    with connect(host, port) as sock:
        wire.open_connection(sock, credentials.get("user", "guest"), credentials.get("password", ""), credentials.get("vhost", "/"))
        wire.close(sock)
    return "AMQP login and vhost open"


class AmqpStrategy(VolumeArchiveStrategy):
    def __init__(self):
        super().__init__(NAME)

    def tool_version(self, engine, ctx):
        return "docker-archive of the RabbitMQ data dir"

    def restore(self, engine, ctx, backup):
        parent = os.path.dirname(ctx.mount_path) or "/"
        # As for any volume archive: upload a private copy, checked again (see generic.py).
        with checked_copy(backup, ctx.scratch_dir, lambda copy: self._check(copy, backup, ctx.mount_path)) as payload:
            load_into_fresh_volume(engine, ctx, parent, payload, wait=False)
        self.await_node(engine, ctx)
        self.reset_credentials(engine, ctx)
        ctx.wait_ready()

    def await_node(self, engine, ctx) -> None:
        """Until the node answers the CLI (its login cannot be the sign: the restored users
        may not know this service's password yet)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            result = engine.exec_capture(ctx.container, ["rabbitmqctl", "await_startup", "--timeout", "60"])
            if result.exit_code == 0:
                return
            if time.monotonic() > deadline:
                raise BackupFailed(f"RabbitMQ in {ctx.container} did not start after the restore: {result.error_text()[-300:]}")
            ctx.sleep(1.0)  # the node is not registered yet

    def reset_credentials(self, engine, ctx) -> None:
        user, password = ctx.credentials["user"], ctx.credentials["password"]
        vhost = ctx.credentials.get("vhost", "/")
        changed = engine.exec_stdin(ctx.container, ["rabbitmqctl", "change_password", user], io.BytesIO(password.encode() + b"\n"))
        if changed.exit_code == 0:
            return
        created = engine.exec_stdin(ctx.container, ["rabbitmqctl", "add_user", user], io.BytesIO(password.encode() + b"\n"))
        if created.exit_code != 0:
            raise BackupFailed(f"Could not set {user}'s password in {ctx.container} after the restore: {created.error_text()}")
        self._rabbitmqctl(engine, ctx, ["set_user_tags", user, "administrator"])
        self._rabbitmqctl(engine, ctx, ["set_permissions", "-p", vhost, user, ".*", ".*", ".*"])

    @staticmethod
    def _rabbitmqctl(engine, ctx, arguments: list[str]) -> None:
        result = engine.exec_capture(ctx.container, ["rabbitmqctl", *arguments])
        if result.exit_code != 0:
            raise BackupFailed(f"rabbitmqctl {arguments[0]} failed in {ctx.container}: {result.error_text()}")


BACKUP = AmqpStrategy()
