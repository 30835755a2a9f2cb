"""Operating a running service: open its engine's client (`svc connect`), rotate its password,
change its resource limits (`svc update`), and measure it (`svc stats`).

Every change holds the service's lock. Nothing here prints: the CLI renders the results.
"""

from __future__ import annotations

import dataclasses
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from paas_svc.engine.views import ContainerView
from paas_svc.errors import Conflict, InvalidInput, PaasError, ProvisioningFailed
from paas_svc.kinds import kind_of
from paas_svc.kinds.clients import client_command, rotation
from paas_svc.kinds.readiness import probe
from paas_svc.secrets.generate import generate_secret
from paas_svc.secrets.keyfile import key_lock
from paas_svc.state.locks import service_lock
from paas_svc.state.models import FAILED, READY, REMOVED, ServiceRecord
from paas_svc.usecases.lifecycle import ServiceManager, effective_limits, mask_secrets, validate_timeout


def _locked(manager: ServiceManager, service: ServiceRecord):
    return service_lock(manager.home, service.env_id, service.slug)


def _require_running(manager: ServiceManager, service: ServiceRecord) -> None:
    if service.status == REMOVED:
        raise Conflict(f"{service.slug} was removed (its volume is kept).",
                       hint=f"Re-create it with `paas svc add {service.slug} --env {service.env} --template {service.template}`.")
    state = manager.engine.inspect_container(service.container_name)
    if state is None or not state.running:
        raise Conflict(f"{service.slug} is not running.", hint=f"Start it with `paas svc start {service.slug} --env {service.env}`.")


# -- svc connect -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ConnectCommand:
    argv: list[str]  # the docker CLI's argv: names of variables only, never their values
    environment: dict[str, str]  # the variables (secrets) the docker CLI passes on to the exec


def connect_command(manager: ServiceManager, service: ServiceRecord, tty: bool) -> ConnectCommand:
    """`docker exec -i [-t] -e NAME... CONTAINER CLIENT...`: the docker CLI copies each named
    variable from its own environment into the exec, so no value is ever on a command line.
    For a remote target the docker CLI is pointed at its engine (DOCKER_HOST and its TLS files)."""
    from paas_svc.engine.targets import docker_cli_environment

    manager = manager.for_target(service.target)
    docker = shutil.which("docker")
    if docker is None:
        raise InvalidInput("`svc connect` runs the docker CLI, which is not on PATH.",
                           hint="Install the docker CLI, or connect with your own client using `paas svc env SLUG`.")
    command = client_command(kind_of(service.template, service.spec), manager.vault.credentials(service),
                             service.container_port, tls=service.spec.get("tls") in ("required", "optional"))
    engine_environment = docker_cli_environment(manager.home, manager.target)
    _require_running(manager, service)
    argv = [docker, "exec", "-i"] + (["-t"] if tty else [])
    for name in command.environment:
        argv += ["-e", name]
    manager.store.audit("connect", service.project, service.env, service.slug, "tty" if tty else "pipe")
    return ConnectCommand(argv + [service.container_name, *command.argv], {**engine_environment, **command.environment})


# -- svc rotate-password ---------------------------------------------------------------------

@dataclass(frozen=True)
class RotateResult:
    service: ServiceRecord
    field: str
    recreated: bool
    finished_earlier: bool  # an interrupted rotation was completed instead of starting a new one
    also: tuple[str, ...] = ()  # further credentials renewed with it (MariaDB: root_password)


def rotate_password(manager: ServiceManager, service: ServiceRecord, timeout: float = 120.0) -> RotateResult:
    """New credentials inside the running engine, checked by a real login, then stored in one step.

    The new credentials are recorded (encrypted, as pending) BEFORE the engine changes, so a crash
    in between leaves both passwords known; the next rotation finds which one the engine takes."""
    validate_timeout(timeout)
    manager = manager.for_target(service.target)
    kind = kind_of(service.template, service.spec)
    with _locked(manager, service) as locked:
        if not locked:
            raise Conflict(f"{service.slug} is being changed by another paas process right now.")
        service = manager.store.get_service_by_id(service.id)  # re-read under the lock
        _require_running(manager, service)
        # The key lock keeps a `paas key rotate` from re-encrypting the stored secret while the
        # pending one, encrypted under the key of the moment, waits to replace it.
        with key_lock(manager.home):
            manager.vault.forget_cached_key()
            return _rotate_locked(manager, service, kind, timeout)


def _rotate_locked(manager: ServiceManager, service: ServiceRecord, kind: str, timeout: float) -> RotateResult:
    finished = _finish_interrupted_rotation(manager, service)
    if finished is not None:
        return finished
    old = manager.vault.credentials(service)
    plan = rotation(kind, old, "", service.container_port)
    fields = (plan.field, *plan.also)
    new = {**old, **{name: generate_secret(max(len(old.get(name, "")), 32)) for name in fields}}
    plan = rotation(kind, old, new[plan.field], service.container_port, new,
                    tls=service.spec.get("tls") in ("required", "optional"))
    manager.store.set_pending_secret(service.id, manager.vault.encrypt(new))
    if plan.command is not None:
        result = manager.engine.exec_capture(service.container_name, plan.command.argv, plan.command.environment)
        if result.exit_code != 0:
            manager.store.set_pending_secret(service.id, None)  # the engine kept the old password
            raise ProvisioningFailed(f"Could not change the password of {service.slug}: "
                                     + mask_secrets(result.error_text(), {**old, **{f"new {n}": new[n] for n in fields}}))
    pending = manager.store.pending_secret(service.id)
    if plan.recreate:
        service.secret = pending  # the new container renders the new credentials
        try:
            manager.recreate(service, timeout)
        except PaasError:
            manager.store.set_status(service.id, FAILED, "password rotation interrupted; run `paas svc rotate-password` again")
            raise
        manager.store.set_status(service.id, READY)
    elif not _accepts(manager, service, new):
        raise ProvisioningFailed(f"{service.slug} does not accept its new password; the old one is kept.",
                                 hint="Run `paas svc rotate-password` again.")
    manager.store.commit_pending_secret(service.id, ("rotate-password", service.project, service.env, service.slug,
                                                     f"field={','.join(fields)}" + (" recreated" if plan.recreate else "")))
    return RotateResult(manager.store.get_service_by_id(service.id), plan.field, plan.recreate, False, plan.also)


def _accepts(manager: ServiceManager, service: ServiceRecord, credentials: dict[str, str]) -> bool:
    """A real login through the published port, where this machine reaches it (the target's
    publish address, or an ssh forward to it)."""
    readiness = service.spec["readiness"]
    host, port = manager.probe_address(service, service.host_ports[int(readiness.get("port", service.container_port))])
    kind = kind_of(service.template, service.spec)
    from paas_svc.usecases.tls import readiness_context

    return probe(readiness, host, port, credentials, kind,
                 lambda command: manager.engine.exec_capture(service.container_name, command),
                 readiness_context(manager, service))[0]


def _finish_interrupted_rotation(manager: ServiceManager, service: ServiceRecord) -> RotateResult | None:
    token = manager.store.pending_secret(service.id)
    if token is None:
        return None
    try:
        pending = manager.vault.credentials(dataclasses.replace(service, secret=token))
    except PaasError:  # e.g. encrypted under a key rotated away since: unusable
        manager.store.set_pending_secret(service.id, None)
        return None
    if _accepts(manager, service, pending) and not _accepts(manager, service, manager.vault.credentials(service)):
        manager.store.commit_pending_secret(service.id, ("rotate-password", service.project, service.env, service.slug,
                                                         "finished an interrupted rotation"))
        return RotateResult(manager.store.get_service_by_id(service.id), "password", False, True)
    manager.store.set_pending_secret(service.id, None)  # the engine still takes the stored password
    return None


# -- svc update (limits) -----------------------------------------------------------------------

@dataclass(frozen=True)
class UpdateResult:
    service: ServiceRecord
    changed: list[str]
    recreated: bool


def update_service(manager: ServiceManager, service: ServiceRecord, changes: dict, timeout: float = 120.0) -> UpdateResult:
    """Apply spec changes ({"limits": {...}}, {"url_scheme": ...}, {"tls": mode}). Limits and TLS re-create the
    container on its volume (same credentials and ports); if the new one never gets Ready, the
    old settings are put back."""
    validate_timeout(timeout)
    if "tls" in changes:  # "required" | "optional" | "off"
        from paas_svc.kinds import kind_of
        from paas_svc.usecases.tls import check_kind_supports, check_mode

        mode = check_mode(changes["tls"])
        if mode != "off":
            check_kind_supports(kind_of(service.template, service.spec), service.template, service.spec, mode)
        changes = {**changes, "tls": None if mode == "off" else mode}
    manager = manager.for_target(service.target)
    with _locked(manager, service) as locked:
        if not locked:
            raise Conflict(f"{service.slug} is being changed by another paas process right now.")
        service = manager.store.get_service_by_id(service.id)
        old_spec = service.spec
        new_spec = {**old_spec, **changes}
        changed = sorted(key for key in changes if _normal(key, old_spec.get(key)) != _normal(key, changes[key]))
        if not changed:
            return UpdateResult(service, [], False)
        # New limits, or TLS on/off (the server's arguments and certificate files), need a new container.
        recreate = ("limits" in changed or "tls" in changed) and service.status != REMOVED
        if recreate:
            _require_running(manager, service)
            service.spec = new_spec
            try:
                manager.recreate(service, timeout)
            except PaasError as error:
                service.spec = old_spec
                try:
                    manager.recreate(service, timeout)
                except PaasError:
                    manager.store.set_status(service.id, FAILED, "update failed; run `paas svc repair`")
                raise ProvisioningFailed(f"{service.slug} did not start with the new settings, so the old ones are back: {error.message}",
                                         hint=error.hint) from None
        manager.store.set_spec(service.id, new_spec)
        manager.store.audit("update", service.project, service.env, service.slug,
                            " ".join(f"{key}={new_spec[key]}" for key in changed))
        return UpdateResult(manager.store.get_service_by_id(service.id), changed, recreate)


def _normal(key: str, value):
    return {"memory": None, "cpus": None, **(value or {})} if key == "limits" else value


def container_limits(container: ContainerView) -> dict:
    """What the engine applies: {"memory": bytes | None, "cpus": cores | None}."""
    nano = container.nano_cpus
    return {"memory": container.memory_limit, "cpus": round(nano / 1e9, 2) if nano else None}


def limits_mismatch(container: ContainerView, service: ServiceRecord) -> str | None:
    wanted = effective_limits(service.spec)
    actual = container_limits(container)
    if actual != wanted:
        return f"limits {actual} instead of {wanted}"
    return None


# -- svc stats ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceStats:
    service: ServiceRecord
    running: bool
    cpu_percent: float | None
    memory_bytes: int | None
    memory_limit_bytes: int | None  # the container's limit, or the host's memory when it has none
    limited: bool
    volume_bytes: int | None


def service_stats(manager: ServiceManager, services: list[ServiceRecord]) -> list[ServiceStats]:
    """One pass per target: the sizes of all its volumes in one request, the containers' samples
    in parallel; the results in the order of `services`."""
    engines = {name: manager.for_target(name).engine for name in dict.fromkeys(s.target for s in services)}
    sizes: dict[str, int] = {}
    for engine in engines.values():
        sizes.update(engine.volume_sizes())
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(services)))) as pool:
        samples = list(pool.map(lambda s: engines[s.target].container_stats(s.container_name), services))
    results = []
    for service, sample in zip(services, samples):
        running = bool(sample and (sample.get("memory_stats") or {}).get("usage") is not None)
        size = sizes.get(service.volume_name)
        results.append(ServiceStats(
            service, running,
            cpu_percent(sample) if running else None,
            memory_used(sample) if running else None,
            (sample.get("memory_stats") or {}).get("limit") if running else None,
            bool((service.spec.get("limits") or {}).get("memory")),
            size if size is not None and size >= 0 else None,
        ))
    return results


def cpu_percent(sample: dict) -> float:
    """As `docker stats` computes it: the container's share of all CPUs between two samples, x CPUs."""
    cpu, previous = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (previous.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - previous.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return round(cpu_delta / system_delta * cpus * 100.0, 2)


def memory_used(sample: dict) -> int:
    """As `docker stats` shows it: usage minus the page cache (inactive_file on cgroup v2, cache on v1)."""
    memory = sample.get("memory_stats") or {}
    stats = memory.get("stats") or {}
    cache = stats.get("inactive_file", stats.get("total_inactive_file", stats.get("cache", 0)))
    return max(0, int(memory.get("usage", 0)) - int(cache))
