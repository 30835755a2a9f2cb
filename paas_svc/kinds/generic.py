"""The generic kind: any image, described only by its template. It holds the options every
template may choose instead of its kind's own protocol probe and backup:

readiness
  tcp      a TCP connection to the port is accepted
  http     GET path answers the expected status (optionally with a Bearer credential)
  command  a command run in the container exits 0 (credentials come from the container's
           environment, never from the command line)
backup
  command  a dump command whose stdout is the backup, and a restore command reading it on
           stdin, both run in the container with credentials passed through the environment
  volume   a tar of the whole volume, taken with the container stopped
tls (the template's `tls` section, see paas_svc/template_schema.py)
  where the certificate, key and CA go, the owner the server reads them as, the arguments
  and variables that turn TLS on, the modes the server can do, and the URL's scheme and
  query parameters when TLS is on: tls_server, tls_url and tls_layout read it
"""

from __future__ import annotations

import http.client
import os
from typing import BinaryIO, Callable, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from paas_svc.dsn import render_environment
from paas_svc.errors import InvalidInput, PaasError
from paas_svc.kinds.protocols import ProtocolError, connect
from paas_svc.kinds.strategy import (
    BackupFailed,
    BackupFile,
    InvalidBackup,
    check_volume_tar,
    checked_copy,
    load_into_fresh_volume,
)

NAME = "generic"
CREDENTIALS: tuple[str, ...] = ()
probe = None
BACKUP = None

HTTP_TIMEOUT_SECONDS = 2.0
MAX_DETAIL_CHARS = 120


# -- readiness checks ------------------------------------------------------------------------

def check_tcp(host: str, port: int) -> str:
    with connect(host, port):
        return "accepts connections"


def check_http(host: str, port: int, path: str = "/", status: int = 200, bearer: str | None = None, ssl_context=None) -> str:
    """GET `path`; over HTTPS (the certificate verified by `ssl_context`) when given one."""
    headers = {"Authorization": "Bearer " + bearer} if bearer else {}
    if ssl_context is not None:
        connection = http.client.HTTPSConnection(host, port, timeout=HTTP_TIMEOUT_SECONDS, context=ssl_context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status != status:
        raise ProtocolError(f"GET {path} answered {response.status}")
    return f"GET {path} answered {status}"


def check_command(run: Callable[[list[str]], object], command: list[str], credentials: dict[str, str]) -> str:
    """`run` executes the command in the service's container and returns an ExecResult."""
    try:
        result = run(list(command))
    except PaasError as error:  # e.g. the container is not running (yet)
        raise ProtocolError(error.message) from None
    if result.exit_code != 0:
        text = (result.stderr or result.stdout).decode("utf-8", errors="replace").strip()
        last = text.splitlines()[-1] if text else "no output"
        for value in credentials.values():
            if len(value) >= 8:
                last = last.replace(value, "********")
        raise ProtocolError(f"{command[0]} exited {result.exit_code}: {last[:MAX_DETAIL_CHARS]}")
    return f"{command[0]} exited 0"


# -- TLS from the template ------------------------------------------------------------------

TLS_FROM_TEMPLATE = True  # the kinds' capabilities (catalog.kind_capabilities): a template's tls section applies
STANDARD_TLS_FILES = {"ca": "ca.crt", "cert": "server.crt", "key": "server.key"}


def tls_section(spec: Mapping | None) -> dict | None:
    """The `tls` section of the template a service was made from (its stored definition)."""
    definition = (spec or {}).get("definition")
    section = definition.get("tls") if isinstance(definition, Mapping) else None
    return section if isinstance(section, dict) else None


def _require_section(spec: Mapping | None) -> dict:
    section = tls_section(spec)
    if section is None:
        raise InvalidInput("This service's template does not say how its server speaks TLS (it has no tls section).",
                           hint="Add one to the template (README, \"Custom templates\": where the certificate and key go), "
                                "or keep --tls off.")
    return section


def tls_modes(spec: Mapping | None) -> tuple[str, ...]:
    section = tls_section(spec)
    return tuple(section.get("modes") or ("required",)) if section is not None else ()


def tls_server(mode: str, spec: Mapping | None = None) -> tuple[list[str], dict[str, str]]:
    """(arguments, environment) that turn TLS on, as the template's tls section says."""
    section = _require_section(spec)
    if mode not in tls_modes(spec):
        raise InvalidInput(f"This service's template allows TLS only as {' or '.join(tls_modes(spec))}, not {mode}.",
                           hint=f"Use --tls {tls_modes(spec)[0]} or --tls off.")
    return list(section.get("arguments") or []), {str(name): str(value) for name, value in (section.get("environment") or {}).items()}


def tls_url(url: str, mode: str, ca_path: str, spec: Mapping | None = None) -> str:
    """The URL with the template's TLS scheme and query parameters ({ca_file}: the CA's host path)."""
    section = tls_section(spec)
    if section is None:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    added = {name: str(value).replace("{ca_file}", ca_path) for name, value in (section.get("parameters") or {}).items()}
    query = [(name, value) for name, value in query if name not in added] + list(added.items())
    return urlunsplit((section.get("scheme") or parts.scheme, parts.netloc, parts.path,
                       urlencode(query, safe="/", quote_via=quote), parts.fragment))


def tls_layout(spec: Mapping | None = None) -> tuple[str, dict[str, tuple[str, ...]], str]:
    """(directory in the container, {file name there: the standard files it holds}, owner uid:gid)
    from the template's cert/key/ca paths (one directory, checked by the schema)."""
    section = _require_section(spec)
    files: dict[str, tuple[str, ...]] = {}
    directory = ""
    for field in ("cert", "key", "ca"):
        if section.get(field):
            directory, _, name = str(section[field]).rpartition("/")
            files[name] = (STANDARD_TLS_FILES[field],)
    return directory, files, str(section.get("owner") or "0:0")


# -- backup strategies -------------------------------------------------------------------------

class CommandStrategy:
    """The template's dump command (stdout is the backup) and restore command (reads it on
    stdin), run in the running container. Credentials reach them through the environment."""

    needs_running = True
    replaces_volume = False

    def __init__(self, kind: str, dump: list[str], restore: list[str], environment: dict[str, str] | None = None,
                 extension: str = "dump"):
        self.kind = kind
        self.dump = list(dump)
        self.restore_command = list(restore)
        self.environment = dict(environment or {})
        self.extension = extension

    def _environment(self, ctx) -> dict[str, str]:
        return render_environment(self.environment, ctx.credentials)

    def tool_version(self, engine, ctx):
        return f"command: {self.dump[0]}"

    def backup(self, engine, ctx, sink):
        result = engine.exec_stream(ctx.container, self.dump, sink, environment=self._environment(ctx))
        if result.exit_code != 0:
            raise BackupFailed(f"{self.dump[0]} failed in {ctx.container} (exit {result.exit_code}): {result.error_text()}")

    def check_payload(self, backup, mount_path):
        pass  # the dump's format is the template's own business; size and checksum were checked

    def restore(self, engine, ctx, backup):
        # What the command reads is a private copy whose checksum matched: the file may change meanwhile.
        with checked_copy(backup, ctx.scratch_dir, lambda copy: None) as payload:
            result = engine.exec_stdin(ctx.container, self.restore_command, payload, environment=self._environment(ctx))
        if result.exit_code != 0:
            raise BackupFailed(f"{self.restore_command[0]} failed in {ctx.container} (exit {result.exit_code}): "
                               f"{result.error_text()}")


class VolumeArchiveStrategy:
    """A tar of the whole volume, taken with the container stopped (no writes in flight)."""

    extension = "tar"
    needs_running = False
    replaces_volume = True

    def __init__(self, kind: str):
        self.kind = kind

    def tool_version(self, engine, ctx):
        return "docker-archive"

    def backup(self, engine, ctx, sink):
        state = engine.inspect_container(ctx.container)
        was_running = bool(state and state.running)
        if was_running:
            engine.stop(ctx.container)
        try:
            for chunk in engine.get_archive(ctx.container, ctx.mount_path):
                sink.write(chunk)
        finally:
            if was_running:
                engine.start(ctx.container)
                ctx.wait_ready()

    def check_payload(self, backup, mount_path):
        with backup.open_payload() as payload:
            self._check(payload, backup, mount_path)

    def restore(self, engine, ctx, backup):
        # The file was checked before the restore began, but it could have been replaced since:
        # the archive extracted is a private copy, checked again before anything is stopped.
        parent = os.path.dirname(ctx.mount_path) or "/"
        with checked_copy(backup, ctx.scratch_dir, lambda copy: self._check(copy, backup, ctx.mount_path)) as payload:
            load_into_fresh_volume(engine, ctx, parent, payload)

    @staticmethod
    def _check(payload: BinaryIO, backup: BackupFile, mount_path: str) -> None:
        try:
            check_volume_tar(payload, os.path.basename(mount_path.rstrip("/")))
        except InvalidBackup as error:
            raise InvalidBackup(f"{backup.path}: {error.message}") from None
