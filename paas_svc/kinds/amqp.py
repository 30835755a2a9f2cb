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

TLS (`--tls required`): the main port speaks only AMQPS (`amqps://`), turned on through
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS, which the official image's server script and Debian's
read alike (no config file to mount): `-rabbit tcp_listeners []` closes the plaintext
listener, `-rabbit ssl_listeners [PORT]` opens the TLS one with the certificate and key in
/paas-tls. A RabbitMQ listener speaks TLS or plaintext, never both, so `optional` is refused.
The CLI (rabbitmqctl) talks to the node over Erlang distribution, not AMQP: backups and
restores do not change, and a renewed certificate is taken by clearing the node's PEM cache.
"""

from __future__ import annotations

import io
import os
import ssl
import time
from urllib.parse import urlsplit, urlunsplit

from paas_svc.errors import InvalidInput
from paas_svc.kinds.generic import VolumeArchiveStrategy
from paas_svc.kinds.protocols import amqp as wire
from paas_svc.kinds.protocols import connect
from paas_svc.kinds.strategy import BackupFailed, checked_copy, load_into_fresh_volume

NAME = "amqp"
CREDENTIALS: tuple[str, ...] = ("user", "password")
STARTUP_TIMEOUT_SECONDS = 300


TLS_DIR = "/paas-tls"
TLS_MODES: tuple[str, ...] = ("required",)  # one listener, one protocol: no "optional"
TLS_FILE_OWNER = "rabbitmq"  # the server runs as rabbitmq (100 in -alpine, 999 in the Ubuntu images) and reads the key
DEFAULT_PORT = 5672


def probe(host: str, port: int, credentials: dict[str, str], ssl_context: ssl.SSLContext | None = None) -> str:
    with connect(host, port) as raw:
        sock = ssl_context.wrap_socket(raw, server_hostname=host) if ssl_context is not None else raw
        with sock:
            wire.open_connection(sock, credentials.get("user", "guest"), credentials.get("password", ""),
                                 credentials.get("vhost", "/"))
            wire.close(sock)
    return "AMQP login and vhost open" + (" over TLS" if ssl_context is not None else "")


def tls_server(mode: str, spec: dict | None = None) -> tuple[list[str], dict[str, str]]:
    """(arguments, environment) that make the broker's main port speak only AMQPS."""
    if mode not in TLS_MODES:
        raise InvalidInput(f"RabbitMQ cannot offer TLS with --tls {mode}: a listener speaks TLS or plaintext, not both.",
                           hint="Use --tls required (apps then connect with amqps://) or --tls off.")
    port = int((spec or {}).get("port") or DEFAULT_PORT)
    options = ",".join([f'{{cacertfile,"{TLS_DIR}/ca.crt"}}', f'{{certfile,"{TLS_DIR}/server.crt"}}',
                        f'{{keyfile,"{TLS_DIR}/server.key"}}', "{verify,verify_none}", "{fail_if_no_peer_cert,false}"])
    arguments = f"-rabbit tcp_listeners [] -rabbit ssl_listeners [{port}] -rabbit ssl_options [{options}]"
    return [], {"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": arguments}


def tls_reload(engine, container: str, credentials: dict[str, str]) -> bool:
    """Renewed files without a restart: the node re-reads them for new connections once its
    PEM cache is cleared (RabbitMQ's documented way); open connections stay."""
    result = engine.exec_capture(container, ["rabbitmqctl", "eval", "ssl:clear_pem_cache()."])
    return result.exit_code == 0 and result.stdout.strip() == b"ok"


def tls_url(url: str, mode: str, ca_path: str, spec: dict | None = None) -> str:
    """amqp:// becomes amqps:// (pika, amqplib, the Erlang and Java clients verify the server
    against the CA they are given: {SLUG}_CA_CERT_FILE). No query parameter: clients disagree
    on their names and pika refuses the ones it does not know."""
    parts = urlsplit(url)
    return urlunsplit(("amqps", *parts[1:])) if parts.scheme == "amqp" else url


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
