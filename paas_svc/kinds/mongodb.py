"""The mongodb kind: MongoDB. A SCRAM-SHA-256 login as the root user then `ping` as its
readiness probe; mongodump / mongorestore as its backup; user and password (the root user,
authSource admin) as its credentials.

TLS: mongod's own options, `--tlsMode requireTLS` (or preferTLS for `optional`: TLS and
plaintext on the one port) with `--tlsCertificateKeyFile` (mongod wants the certificate and
its key in ONE file: /paas-tls/server.pem, see TLS_FILES) and no client certificates asked
for. The official image's entrypoint runs `mongod ARGS` for arguments that start with `-`.
Apps get `tls=true&tlsCAFile=PATH` in the URL (pymongo, the Node, Go and Java drivers read
both); the tools in the container (mongodump/mongorestore) connect with --ssl and the CA."""

from __future__ import annotations

import json
import ssl
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from paas_svc.kinds.protocols import connect
from paas_svc.kinds.protocols import mongo as wire
from paas_svc.kinds.strategy import BackupFailed, check_magic, first_line, single_file_tar, temp_name

if TYPE_CHECKING:
    from paas_svc.engine.sdk import ExecResult

NAME = "mongodb"
CREDENTIALS: tuple[str, ...] = ("user", "password")
PARTIAL_RESTORE = ("mongorestore --drop is not transactional: some collections may already be dropped or replaced "
                   "by the backup's, others not")


TLS_DIR = "/paas-tls"
TLS_MODES: tuple[str, ...] = ("required", "optional")
TLS_MONGOD_MODES = {"required": "requireTLS", "optional": "preferTLS"}
TLS_FILE_OWNER = "mongodb"  # mongod runs as mongodb (999 in the official image) and reads the key
SERVER_COMMAND = ["mongod"]  # the image's own CMD, which the TLS arguments follow
# Files made in the TLS directory besides ca.crt, server.crt and server.key: name -> the
# standard files it concatenates (mongod reads the certificate and key from one PEM file).
TLS_FILES = {"server.pem": ("server.crt", "server.key")}


def probe(host: str, port: int, credentials: dict[str, str], ssl_context: ssl.SSLContext | None = None) -> str:
    with connect(host, port) as raw:
        sock = ssl_context.wrap_socket(raw, server_hostname=host) if ssl_context is not None else raw
        with sock:
            wire.login_and_ping(sock, credentials.get("user", ""), credentials.get("password", ""))
    return "authenticated ping answered ok" + (" over TLS" if ssl_context is not None else "")


def tls_server(mode: str, spec: dict | None = None) -> tuple[list[str], dict[str, str]]:
    """(arguments, environment): mongod's TLS options (after SERVER_COMMAND: the official
    entrypoint runs its first-run init with them too, as allowTLS)."""
    from paas_svc.errors import InvalidInput

    if mode not in TLS_MONGOD_MODES:
        raise InvalidInput(f"Unknown TLS mode {mode!r} for MongoDB (required or optional).")
    return ["--tlsMode", TLS_MONGOD_MODES[mode], "--tlsCertificateKeyFile", f"{TLS_DIR}/server.pem",
            "--tlsCAFile", f"{TLS_DIR}/ca.crt", "--tlsAllowConnectionsWithoutCertificates"], {}


def tls_url(url: str, mode: str, ca_path: str, spec: dict | None = None) -> str:
    """The URL with tls=true&tlsCAFile=PATH (the MongoDB URI options every driver reads)."""
    parts = urlsplit(url)
    query = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
             if name.lower() not in ("tls", "ssl", "tlscafile")]
    query += [("tls", "true"), ("tlsCAFile", ca_path)]
    return urlunsplit((*parts[:3], urlencode(query, safe="/", quote_via=quote), parts.fragment))


def tool_tls_arguments(ctx) -> list[str]:
    """What mongodump/mongorestore in the container add to reach a TLS-only server (the
    certificate names localhost)."""
    mode = _tls_mode(ctx.service)
    return ["--ssl", f"--sslCAFile={TLS_DIR}/ca.crt"] if mode in TLS_MONGOD_MODES else []


def _tls_mode(service) -> str | None:
    mode = getattr(service, "tls", None) or (service.spec.get("tls") if isinstance(getattr(service, "spec", None), dict) else None)
    return mode if isinstance(mode, str) else None


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
        command = ["sh", "-c", MONGO_WITH_CONFIG_SCRIPT, "paas-mongo-tool", *tool_args, *tool_tls_arguments(ctx),
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
