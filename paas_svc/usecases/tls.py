"""TLS for a service: its mode, the server arguments its kind adds, the certificate files put
into its container, the probe's context, renewal.

A service's mode is `spec["tls"]`: "required" (plaintext refused), "optional" (both), absent
(plaintext only). Its kind module says how (see paas_svc/kinds/__init__.py):
    tls_server(mode) -> (arguments, environment)  what turns TLS on; the arguments follow the
                       template's command, or the kind's SERVER_COMMAND (the image's own CMD)
    TLS_FILE_OWNER     "user[,user...]" (the first in the container's /etc/passwd) or "uid:gid": the
                       owner of the key (0600); the certificates are 0644
    tls_files(mode)    optional: more files for /paas-tls (postgres: its hba file)
    TLS_FILES          optional: {name: (standard files)}, the certificate files under more names
                       or joined in one (mongodb: server.pem; s3: public.crt, private.key)
    TLS_MODES          optional: the modes its server can do (("required",): one port, one protocol)
    TLS_FROM_TEMPLATE  the kind reads all this from the template's tls section (generic:
                       tls_server(mode, spec), tls_url(url, mode, ca_path, spec), tls_layout(spec))
    tls_url(url, mode, ca_path) -> the URL apps get (the verification their clients read)
    tls_reload(engine, container, credentials) -> bool: optional, renewed files taken without
                       a restart (False, or no hook: the container is restarted)

The files reach the container through the engine (written into it after it is created, before
it starts: local and remote engines alike), at /paas-tls/{ca.crt,server.crt,server.key}. On
Swarm they are Docker configs (the certificates) and secrets (the key), mounted there by Swarm.
A server certificate lasts 90 days; `backup run-due` (the host timer) renews those with less
than 30 days left (`renew_due`); `doctor` warns 14 days ahead.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from paas_svc.errors import InvalidInput
from paas_svc.kinds import kind_hook, kind_module, kind_of
from paas_svc.secrets.tls import (
    CONTAINER_DIR,
    RENEW_DAYS,
    TLS_MODES,
    ca_pem,
    client_context,
    days_left,
    issue_server_certificate,
)
from paas_svc.state.models import ServiceRecord

MODES_AND_OFF = (*TLS_MODES, "off")
NOT_AFTER = "tls_not_after"  # spec: when the certificate in the container expires (ISO, UTC)


def tls_mode(service_or_spec) -> str | None:
    """"required", "optional", or None (plaintext)."""
    spec = service_or_spec.spec if isinstance(service_or_spec, ServiceRecord) else service_or_spec
    mode = (spec or {}).get("tls")
    return mode if mode in TLS_MODES else None


def check_mode(mode: str) -> str:
    if mode not in MODES_AND_OFF:
        raise InvalidInput(f"--tls {mode!r} is not one of {', '.join(MODES_AND_OFF)}.")
    return mode


def supported_modes(kind: str, spec=None) -> tuple[str, ...]:
    """The TLS modes a service of this kind (and template: `spec`) can run in; () for none.
    A kind that reads its template (TLS_FROM_TEMPLATE: generic) can when the template has a
    tls section; a kind's TLS_MODES narrows both modes (one port, one protocol: required only)."""
    if kind_hook(kind, "tls_server") is None:
        return ()
    module = kind_module(kind)
    if getattr(module, "TLS_FROM_TEMPLATE", False):
        return tuple(module.tls_modes(spec))
    return tuple(getattr(module, "TLS_MODES", TLS_MODES))


def check_kind_supports(kind: str, template: str, spec=None, mode: str | None = None) -> None:
    modes = supported_modes(kind, spec)
    if not modes:
        raise InvalidInput(f"{template} services cannot speak TLS through paas (its kind, {kind}, says nothing about TLS"
                           f"{'' if kind_hook(kind, 'tls_server') is None else ', and its template has no tls section'}).",
                           hint="Leave out --tls (or pass --no-tls on a remote target).")
    if mode is not None and mode not in modes:
        raise InvalidInput(f"{template} services cannot run with --tls {mode}: their server speaks TLS or plaintext on a port, "
                           "not both.", hint=f"Use --tls {modes[0]}, or --tls off.")


def new_service_mode(target, kind: str, template: str, asked: str | None, spec=None) -> str | None:
    """The mode a new service gets: the one asked for ("off": None), else "required" where apps
    reach it over a network (a target whose publish address is not loopback, or a Swarm, whose
    services are published on their node's address; only for kinds, or templates (`spec`), that
    can require TLS), else None."""
    from paas_svc.dsn import is_loopback

    if asked is None:
        if (not target.swarm and is_loopback(target.publish_address)) or "required" not in supported_modes(kind, spec):
            return None
        asked = "required"
    if check_mode(asked) == "off":
        return None
    check_kind_supports(kind, template, spec, asked)
    return asked


def server_arguments(kind: str, mode: str, command: list[str] | None, spec=None) -> tuple[list[str] | None, dict[str, str]]:
    """The container's command with its kind's TLS arguments, and the environment they need
    (a TLS_FROM_TEMPLATE kind reads them from the service's template: `spec`)."""
    hook = kind_hook(kind, "tls_server")
    if hook is None:
        raise InvalidInput(f"The {kind} kind cannot speak TLS.")
    arguments, environment = hook(mode, spec) if getattr(kind_module(kind), "TLS_FROM_TEMPLATE", False) else hook(mode)
    if not arguments:
        return command, dict(environment)
    base = command if command else list(getattr(kind_module(kind), "SERVER_COMMAND", []) or [])
    if not base:
        raise InvalidInput(f"The {kind} kind's TLS arguments need the server's command, and its template has none.")
    return [*base, *arguments], dict(environment)


def server_names(manager, service: ServiceRecord) -> list[str]:
    """What apps reach it by: this host, the publish address, its name on the network."""
    names = ["127.0.0.1", "localhost", "::1", manager.publish_host(service), service.container_name]
    names += list(service.spec.get("network_aliases") or [])
    if service.spec.get("hostname"):
        names.append(service.spec["hostname"])
    return names


def container_owner(engine, container: str, owner: str) -> tuple[int, int]:
    """(uid, gid) of `owner` ("uid:gid", or user names read from the container's /etc/passwd,
    comma-separated: the first the image has); (0, 0) when it has none of them."""
    if ":" in owner and owner.replace(":", "").isdigit():
        uid, gid = owner.split(":", 1)
        return int(uid), int(gid)
    try:
        raw = b"".join(engine.get_archive(container, "/etc/passwd"))
        with tarfile.open(fileobj=io.BytesIO(raw)) as archive:
            member = archive.next()
            handle = archive.extractfile(member) if member is not None else None
            text = handle.read().decode("utf-8", errors="replace") if handle is not None else ""
    except (tarfile.TarError, OSError):
        return 0, 0
    users = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit() and fields[3].isdigit():
            users.setdefault(fields[0], (int(fields[2]), int(fields[3])))
    return next((users[name] for name in owner.split(",") if name in users), (0, 0))


def files_archive(files: list[tuple[str, bytes, int]], uid: int, gid: int, directory: str = CONTAINER_DIR) -> bytes:
    """A tar of `directory` (/paas-tls; extracted at /) with (name, content, mode) files owned by uid:gid."""
    buffer = io.BytesIO()
    folder = directory.strip("/")
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(folder)
        info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, gid, now
        archive.addfile(info)
        for name, content, mode in files:
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mode, info.uid, info.gid, info.mtime = len(content), mode, uid, gid, now
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@dataclass
class Delivered:
    not_after: datetime
    names: tuple[str, ...]


def file_set(manager, service: ServiceRecord, mode: str):
    """A new server certificate (and key) as the files its container needs: (FileSet, Delivered)."""
    from paas_svc.engine.protocol import FileSet

    kind = kind_of(service.template, service.spec)
    module = kind_module(kind)
    certificate = issue_server_certificate(manager.vault, server_names(manager, service))
    standard = {"ca.crt": certificate.ca_pem, "server.crt": certificate.cert_pem, "server.key": certificate.key_pem}
    directory, owner, files = layout(module, service.spec, standard)
    extra_files = getattr(module, "tls_files", None)
    files += [(name, content, 0o600) for name, content in (extra_files(mode) if extra_files else {}).items()]
    secret = frozenset(name for name, content, _ in files if certificate.key_pem in content)
    files_of = FileSet(directory, tuple(files), secret, lambda engine, container: container_owner(engine, container, owner))
    return files_of, Delivered(certificate.not_after, certificate.names)


def deliver(manager, service: ServiceRecord, container: str, mode: str) -> Delivered:
    """A new server certificate (and key) written into `container` (created, running or not)."""
    files, delivered = file_set(manager, service, mode)
    uid, gid = files.owner(manager.engine, container)
    manager.engine.put_archive(container, "/", files_archive(list(files.files), uid, gid, files.directory))
    return delivered


def layout(module, spec, standard: dict[str, bytes]) -> tuple[str, str, list[tuple[str, bytes, int]]]:
    """(directory in the container, owner, [(name, content, mode)]): the standard files in
    /paas-tls, plus the kind's TLS_FILES (more names for them, or several in one file: mongod's
    certificate-and-key PEM, MinIO's public.crt/private.key); or where the template's tls
    section puts them (a kind with tls_layout: generic). A file holding the key is 0600."""
    owner = getattr(module, "TLS_FILE_OWNER", "0:0")
    directory, names = CONTAINER_DIR, {name: (name,) for name in standard}
    if hasattr(module, "tls_layout"):
        directory, names, owner = module.tls_layout(spec)
    else:
        names.update(getattr(module, "TLS_FILES", {}))
    files = [(name, b"".join(standard[part] for part in parts), 0o600 if "server.key" in parts else 0o644)
             for name, parts in names.items()]
    return directory, owner, files


def preparer(manager, service: ServiceRecord):
    """ContainerSpec.prepare for a TLS service: its certificate files into each new container
    (the service's own records the expiry)."""
    mode = tls_mode(service)

    def prepare(container: str) -> None:
        delivered = deliver(manager, service, container, mode)
        if container == service.container_name:
            record_not_after(manager, service, delivered.not_after)

    return prepare


def swarm_files(manager, service: ServiceRecord):
    """ContainerSpec.files for a TLS service on Swarm: its certificate files, which the engine
    turns into Docker configs (certificates) and secrets (the key) of the new service."""
    mode = tls_mode(service)

    def files(name: str):
        made, delivered = file_set(manager, service, mode)
        if name == service.container_name:
            record_not_after(manager, service, delivered.not_after)
        return made

    return files


def record_not_after(manager, service: ServiceRecord, not_after: datetime) -> None:
    service.spec[NOT_AFTER] = not_after.astimezone(timezone.utc).isoformat()
    manager.store.set_spec(service.id, service.spec)


def readiness_context(manager, service: ServiceRecord):
    """The context of the service's readiness check: TLS is on its main port only, so a check on
    another port (Mailpit's web UI on 8025) stays plaintext (None)."""
    readiness = service.spec.get("readiness") or {}
    if int(readiness.get("port", service.container_port)) != service.container_port:
        return None
    return probe_context(manager, service)


def probe_context(manager, service: ServiceRecord):
    """The ssl.SSLContext a probe of this service uses (trusting only the profile's CA), or None."""
    if tls_mode(service) is None:
        return None
    return client_context(ca_pem(manager.home, manager.store))


# -- renewal -----------------------------------------------------------------------------------


@dataclass
class Renewal:
    service: ServiceRecord
    not_after: datetime
    reloaded: bool  # False: the container was restarted to take the new files


def needs_renewal(service: ServiceRecord, now: datetime | None = None, within_days: float = RENEW_DAYS) -> bool:
    if tls_mode(service) is None:
        return False
    stamp = service.spec.get(NOT_AFTER)
    return stamp is None or days_left(stamp, now) < within_days


def renew(manager, service: ServiceRecord, timeout: float = 120.0) -> Renewal:
    """With the service's lock held: a new certificate into its running container, taken by a
    reload where the server can (no downtime), else by a restart. On Swarm: new configs and
    secrets, and a rolling update of the service (its task restarts: a short outage)."""
    mode = tls_mode(service)
    if manager.target.swarm:
        files, delivered = file_set(manager, service, mode)
        manager.engine.replace_files(service.container_name, files)
        record_not_after(manager, service, delivered.not_after)
        manager.wait_ready(service, timeout)
        return Renewal(service, delivered.not_after, False)
    delivered = deliver(manager, service, service.container_name, mode)
    record_not_after(manager, service, delivered.not_after)
    hook = kind_hook(kind_of(service.template, service.spec), "tls_reload")
    reloaded = bool(hook and hook(manager.engine, service.container_name, manager.vault.credentials(service)))
    if not reloaded:
        manager.engine.restart(service.container_name)
        manager.wait_ready(service, timeout)
    return Renewal(service, delivered.not_after, reloaded)


@dataclass
class RenewalOutcome:
    where: str  # project/env/slug
    not_after: str | None = None
    reloaded: bool | None = None
    error: str | None = None


def renew_due(manager, now: datetime | None = None) -> list[RenewalOutcome]:
    """Renew every Ready TLS service (on any target: `manager.for_target`) whose certificate has
    less than 30 days left; the host timer's `backup run-due` calls it. A service another process
    holds is left for the next minute; a failure is reported and retried then."""
    from paas_svc.errors import PaasError
    from paas_svc.state.locks import service_lock
    from paas_svc.state.models import READY

    outcomes = []
    for service in manager.store.list_services():
        if service.status != READY or not needs_renewal(service, now):
            continue
        outcome = RenewalOutcome(f"{service.project}/{service.env}/{service.slug}")
        try:
            own = manager.for_target(service.target)
            with service_lock(own.home, service.env_id, service.slug, "tls renew") as got:
                if not got:
                    continue  # busy: the next run renews it
                current = own.store.get_service_by_id(service.id)
                if not needs_renewal(current, now):
                    continue
                renewal = renew(own, current)
        except PaasError as error:
            outcome.error = error.message
            outcomes.append(outcome)
            continue
        outcome.not_after, outcome.reloaded = renewal.not_after.isoformat(), renewal.reloaded
        outcomes.append(outcome)
    return outcomes
