"""`paas doctor`: compare the state with the engine and the files, and fix what is safe to fix.

Safe fixes: tighten file modes, create the missing network, start a stopped container,
re-create a missing container on its kept volume (or finish a crashed add, or replace a
stopped container whose network was removed), each under the service's lock, on every
target in use (a remote target's fixes go to its engine). A volume is never deleted, orphans are only reported, and so is a
service whose restore, upgrade or purge was interrupted (`svc repair` is the way back).
"""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass, field

from paas_svc.dsn import HOST_VIEW_HOST
from paas_svc.errors import DockerUnavailable, PaasError, StateError
from paas_svc.hints import repair_command
from paas_svc.naming import LABEL_PROFILE, LABEL_SERVICE_ID, NETWORK_NAME
from paas_svc.state.locks import service_lock_held
from paas_svc.state.models import FAILED, OPERATION_STATUSES, PROVISIONING, READY, REMOVED, ServiceRecord
from paas_svc.usecases.lifecycle import OPERATION_NAMES, ServiceManager, port_is_free
from paas_svc.usecases.operate import limits_mismatch

# fix actions --fix knows how to apply
CHMOD, CREATE_NETWORK, START, REPAIR = "chmod", "create-network", "start", "repair"
RECREATE = "recreate"  # a stopped container attached to a network that is gone: a new one on its volume
CREATE_ENV_NETWORK = "create-env-network"  # an isolated environment's own network (target: PROJECT/ENV)
SWEEP_VERIFY = "sweep-verify"  # throwaway containers/volumes of a killed `backup verify`
LABEL_PURPOSE = "paas.purpose"  # set on throwaway resources (verify): not orphans of the state


@dataclass
class Finding:
    check: str
    ok: bool
    message: str
    fix: str | None = None  # what the user (or --fix) should do
    action: str | None = None  # set when --fix can apply it safely
    target: str | None = None  # file path or service id the action applies to
    fixed: bool = False
    fix_error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    state_unusable: bool = False  # the state database is damaged: `paas doctor` exits 8

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok and not f.fixed]

    def add(self, *args, **kwargs) -> Finding:
        finding = Finding(*args, **kwargs)
        self.findings.append(finding)
        return finding


def diagnose(manager: ServiceManager) -> Report:
    report = Report()
    _check_files(manager, report)
    try:
        _check_database(manager, report)
        services = manager.store.list_services(include_removed=True)
    except StateError as error:  # a damaged database: report it; nothing else can be trusted
        report.add("database", False, error.message, fix=error.hint)
        report.state_unusable = True
        return report
    _check_key(manager, services, report)
    _check_ports(services, report)
    for target in _targets_in_use(manager, services):
        _check_target(manager.for_target(target), [s for s in services if s.target == target], report)
    _check_backups(manager, report)
    _check_tls(services, report)
    return report


def _check_tls(services: list[ServiceRecord], report: Report) -> None:
    """TLS certificates (90 days) are renewed by the host timer 30 days ahead: one with less than
    14 days left means the timer does not run or the renewal fails. The clock honours PAAS_NOW."""
    from paas_svc.secrets.tls import WARN_DAYS, days_left
    from paas_svc.usecases.backups.clock import now
    from paas_svc.usecases.tls import NOT_AFTER, tls_mode

    moment = now()
    checked = [service for service in services if service.status != REMOVED and tls_mode(service)]
    if not checked:
        return
    expiring = []
    for service in checked:
        stamp = service.spec.get(NOT_AFTER)
        left = days_left(stamp, moment) if stamp else None
        if left is None or left < WARN_DAYS:
            expiring.append((service, stamp, left))
    for service, stamp, left in expiring:
        where = f"{service.project}/{service.env}/{service.slug}"
        what = ("has no recorded certificate" if left is None else
                f"expired on {stamp}" if left <= 0 else f"expires in {left:.0f} days ({stamp})")
        report.add("tls", False, f"The TLS certificate of {where} {what}.",
                   fix="`paas backup run-due` renews it (the host timer runs it every minute once a backup schedule "
                       "exists; run it now, and check `paas backup list` for the timer's state).")
    if not expiring:
        report.add("tls", True, f"TLS certificates of {len(checked)} service{'s' if len(checked) != 1 else ''} "
                                f"valid for {WARN_DAYS}+ days")


def _targets_in_use(manager: ServiceManager, services: list[ServiceRecord]) -> list[str]:
    """local, and every target a service or an environment names."""
    from paas_svc.engine.targets import LOCAL, list_targets

    used = {LOCAL} | {service.target for service in services}
    for project in manager.store.list_projects():
        used |= {env.target for env in manager.store.list_environments(project.name)}
    return [target.name for target in list_targets(manager.store) if target.name in used]


def _check_target(manager: ServiceManager, services: list[ServiceRecord], report: Report) -> None:
    """engine, network, services, orphans and clock skew of one target; findings name it."""
    first = len(report.findings)
    try:
        engine = manager.engine
    except DockerUnavailable as error:
        report.add("engine", False, error.message, fix=error.hint)
    else:
        report.add("engine", True, f"Docker engine reachable ({manager.target.kind} at {engine.address})")
        missing_networks = set() if _check_network(engine, report, manager.target.name) else {NETWORK_NAME}
        missing_networks |= _check_env_networks(manager, engine, services, report)
        _check_services(manager, services, report, frozenset(missing_networks))
        _check_orphans(manager, services, report)
        _check_clock(engine, report)
        _check_verify_leftovers(manager, engine, report)
        if manager.target.swarm:
            for ok, text, fix in engine.swarm_findings(services):
                report.add("swarm", ok, text, fix=fix)
    if not manager.target.is_local:
        for finding in report.findings[first:]:
            finding.message = f"[{manager.target.name}] {finding.message}"


MAX_CLOCK_SKEW_SECONDS = 30


def _check_clock(engine, report: Report) -> None:
    """TLS certificates and backup time stamps go wrong when the engine's clock is far off ours."""
    from datetime import datetime, timezone

    text = engine.server_time()
    try:
        theirs = datetime.fromisoformat(text[:26].rstrip("Z") if "." in text[:26] else text.rstrip("Z"))
    except ValueError:
        report.add("clock", True, f"engine clock not readable ({text!r}); skipped")
        return
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=timezone.utc)
    skew = abs((datetime.now(timezone.utc) - theirs).total_seconds())
    if skew > MAX_CLOCK_SKEW_SECONDS:
        report.add("clock", False, f"the engine's clock is {skew:.0f}s off this machine's",
                   fix="run NTP (chrony, systemd-timesyncd) on both machines")
    else:
        report.add("clock", True, f"engine clock within {skew:.1f}s of this machine's")


def _check_backups(manager: ServiceManager, report: Report) -> None:
    """Schedules are the profile's, whatever target their services are on: checked once."""
    from paas_svc.usecases.backups.health import schedule_findings

    for item in schedule_findings(manager):
        report.add(item.check, item.ok, item.message, fix=item.fix)


def _check_verify_leftovers(manager: ServiceManager, engine, report: Report) -> None:
    from paas_svc.usecases.backups.health import verify_leftover_findings

    for item in verify_leftover_findings(engine, manager.store.profile_id()):
        report.add(item.check, item.ok, item.message, fix=item.fix,
                   action=SWEEP_VERIFY if item.sweep_verify else None, target=manager.target.name)


def _check_files(manager: ServiceManager, report: Report) -> None:
    """Modes of the home and everything in it, by lstat: a symbolic link is reported, never
    followed (chmod-ing its target could open up a file outside the home)."""
    from paas_svc.secrets.tls import ca_cert_path

    home = manager.home
    public_ca = ca_cert_path(home)  # the profile's CA certificate: public (0644), app containers read it
    problems = 0
    for path in [home, *sorted(home.rglob("*"))]:
        try:
            info = path.lstat()
        except FileNotFoundError:  # removed meanwhile (a temp file, a lock)
            continue
        if stat.S_ISLNK(info.st_mode) and path != home:
            problems += 1
            report.add("permissions", False, f"{path} is a symbolic link (to {os.readlink(path)}); paas never makes links in its home",
                       fix=f"check what it points at, then replace it with the real file or remove it: rm {path}")
            continue
        expected = 0o700 if stat.S_ISDIR(info.st_mode) else 0o644 if path == public_ca else 0o600
        mode = stat.S_IMODE(info.st_mode)
        if mode & ~expected:
            problems += 1
            if path == home:  # may be the user's own folder: only tell (ensure_home refuses it when others can write)
                report.add("permissions", False, f"{path} is mode {mode:o}, should be {expected:o}", fix=f"chmod {expected:o} {path}")
            else:
                report.add("permissions", False, f"{path} is mode {mode:o}, should be {expected:o}",
                           fix=f"chmod {expected:o} {path}", action=CHMOD, target=f"{expected:o}:{path}")
    if not problems:
        report.add("permissions", True, f"files under {home} are private (0600/0700)")


def _check_database(manager: ServiceManager, report: Report) -> None:
    result = manager.store.integrity_check()
    if result == "ok":
        report.add("database", True, f"{manager.store.path}: integrity_check ok")
    else:
        report.add("database", False, f"{manager.store.path}: integrity_check says {result}",
                   fix=f"Restore state.db from a backup; `sqlite3 {manager.store.path} .recover` may save what is left.")
        report.state_unusable = True


def _check_key(manager: ServiceManager, services: list[ServiceRecord], report: Report) -> None:
    if not any(s.secret for s in services):
        report.add("key", True, "no stored credentials yet")
        return
    try:
        for service in services:
            manager.vault.credentials(service)
    except PaasError as error:
        report.add("key", False, error.message, fix=error.hint)
        return
    report.add("key", True, f"master key opens all {len(services)} stored credentials")


def _check_network(engine, report: Report, target: str = "local") -> bool:
    if engine.network_exists():
        report.add("network", True, f"network {NETWORK_NAME} exists")
        return True
    report.add("network", False, f"network {NETWORK_NAME} is missing", fix="paas doctor --fix creates it",
               action=CREATE_NETWORK, target=target)
    return False


def _check_env_networks(manager: ServiceManager, engine, services: list[ServiceRecord], report: Report) -> set[str]:
    """The own network of each isolated environment with a service (not removed) on this target;
    returns the names of those that are missing."""
    missing = set()
    for project, env in sorted({(s.project, s.env) for s in services if s.status != REMOVED}):
        environment = manager.store.get_environment(project, env)
        if not environment.isolated:
            continue
        labels = engine.network_labels(environment.network_name)
        if labels is None:
            missing.add(environment.network_name)
            report.add("network", False, f"network {environment.network_name} of {project}/{env} is missing",
                       fix="paas doctor --fix creates it", action=CREATE_ENV_NETWORK, target=f"{project}/{env}")
        elif labels.get(LABEL_PROFILE) != manager.store.profile_id():
            report.add("network", False, f"network {environment.network_name} of {project}/{env} was not made by this profile",
                       fix=f"remove it (`docker network rm {environment.network_name}`), then `paas doctor --fix`")
        else:
            report.add("network", True, f"network {environment.network_name} of {project}/{env} exists")
    return missing


def _check_services(manager: ServiceManager, services: list[ServiceRecord], report: Report,
                    missing_networks: frozenset[str] = frozenset()) -> None:
    for service in services:
        try:
            _check_service(manager, service, report, missing_networks)
        except DockerUnavailable as error:  # Swarm: the engine of the node holding it is down
            report.add("container", False, f"{service.project}/{service.env}/{service.slug}: not checked: {error.message}",
                       fix=error.hint)


def _network_of(manager: ServiceManager, service: ServiceRecord) -> str:
    return manager.store.get_environment(service.project, service.env).network_name


def _check_service(manager: ServiceManager, service: ServiceRecord, report: Report,
                   missing_networks: frozenset[str] = frozenset()) -> None:
    engine = manager.engine
    profile_id = manager.store.profile_id()
    where = f"{service.project}/{service.env}/{service.slug}"
    if service.status in OPERATION_STATUSES:
        # Never fixed by --fix: starting it would use a half-restored or half-upgraded volume
        # as if nothing had happened. `svc repair` knows how to finish or roll back.
        name = OPERATION_NAMES[service.status]
        if service_lock_held(manager.home, service.env_id, service.slug):
            report.add("operation", True, f"{where}: a {name} is running right now")
        else:
            report.add("operation", False, f"{where}: its {name} was interrupted (the data may be incomplete)",
                       fix=f"paas svc repair {service.slug} --env {service.env}  (finishes it or rolls it back; --fix does not)")
        return
    if service.status == PROVISIONING and service_lock_held(manager.home, service.env_id, service.slug):
        report.add("container", True, f"{where}: an add is running right now")
        return
    if service.status == REMOVED:
        if not engine.volume_exists(service.volume_name):
            report.add("volume", False, f"{where} was removed and its kept volume {service.volume_name} is gone",
                       fix=f"paas svc rm {service.slug} --env {service.env} --purge --yes  (forgets its credentials)")
        return
    if not engine.volume_exists(service.volume_name):
        report.add("volume", False, f"{where}: volume {service.volume_name} is missing (its data is gone)",
                   fix=f"{repair_command(service.slug, service.env)} --allow-empty  (re-creates it EMPTY with the same credentials)")
        return
    container = engine.inspect_container(service.container_name)
    if container is None:
        report.add("container", False, f"{where}: container {service.container_name} is missing",
                   fix=repair_command(service.slug, service.env), action=REPAIR, target=service.id)
        return
    problems = _container_mismatches(container, service, profile_id, manager.target.bind_address)
    if problems:
        report.add("container", False, f"{where}: container does not match the state ({'; '.join(problems)})",
                   fix=f"docker rm -f {service.container_name} && {repair_command(service.slug, service.env)}")
        return
    if service.status in (FAILED, PROVISIONING):
        report.add("container", False, f"{where}: last add did not finish ({service.status_reason or service.status})",
                   fix=repair_command(service.slug, service.env), action=REPAIR, target=service.id)
    elif container.state in ("pending", "starting", "failed"):  # Swarm: the swarm findings say why
        report.add("container", container.state != "failed", f"{where}: task {container.state}: {container.status}",
                   fix=None if container.state != "failed" else f"paas svc logs {service.slug} --env {service.env}")
    elif not container.running:
        taken = [port for port in service.host_ports.values() if not port_is_free(port)] if manager.target.is_local else []
        if taken:
            report.add("ports", False, f"{where}: host port(s) {', '.join(map(str, taken))} are taken by another process, so it cannot start",
                       fix=f"stop that process (see `ss -ltnp`), then `{repair_command(service.slug, service.env)}`")
        elif missing_networks and not manager.target.swarm and _network_of(manager, service) in missing_networks:
            # Its endpoint names the removed network's id: a start fails even once a new
            # network of that name exists, so --fix makes a new container on the same volume.
            report.add("container", False, f"{where}: container is {container.state} and its network {_network_of(manager, service)} is gone",
                       fix="paas doctor --fix creates the network and re-creates the container on its volume",
                       action=RECREATE, target=service.id)
        else:
            report.add("container", False, f"{where}: container is {container.state}",
                       fix=repair_command(service.slug, service.env), action=START, target=service.id)
    else:
        report.add("container", True, f"{where}: running, matches the state")


def _container_mismatches(container, service: ServiceRecord, profile_id: str, bind_address: str = HOST_VIEW_HOST) -> list[str]:
    problems = []
    if container.image != service.image:
        problems.append(f"image {container.image} instead of {service.image}")
    labels = container.labels
    if labels.get(LABEL_SERVICE_ID) != service.id or labels.get(LABEL_PROFILE) != profile_id:
        problems.append("labels belong to another service or profile")
    ports = container.ports or {}
    actual = {port: host_port for port, (_, host_port) in ports.items()}
    if actual != service.host_ports:
        problems.append(f"ports {actual} instead of {service.host_ports}")
    if bind_address == HOST_VIEW_HOST and any(ip not in ("", HOST_VIEW_HOST) for ip, _ in ports.values()):
        problems.append("a port is published beyond 127.0.0.1")
    limits = limits_mismatch(container, service)
    if limits:
        problems.append(limits)
    return problems


def _check_orphans(manager: ServiceManager, services: list[ServiceRecord], report: Report) -> None:
    engine = manager.engine
    known = {service.id for service in services}
    label = f"{LABEL_PROFILE}={manager.store.profile_id()}"
    orphans = 0
    for container in engine.list_containers([label]):
        if container.labels.get(LABEL_SERVICE_ID) not in known and LABEL_PURPOSE not in container.labels:
            orphans += 1
            report.add("orphan", False, f"container {container.name} is labelled for this profile but unknown to the state",
                       fix=f"inspect it, then `docker rm -f {container.name}` if it is not needed")
    # A service's volumes: the one in use, its safety copy (kept by a restore into a new volume),
    # and the one an operation in flight fills; any other labelled for it was left behind.
    volumes_of = {}
    for service in services:
        operation = manager.store.get_operation(service.id)
        volumes_of[service.id] = {service.volume_name, service.safety_volume, operation.new_volume if operation else None}
    for volume in engine.list_volumes([label]):
        labels = volume.get("Labels") or {}
        owner = labels.get(LABEL_SERVICE_ID)
        if owner not in known and LABEL_PURPOSE not in labels:
            orphans += 1
            report.add("orphan", False, f"volume {volume['Name']} is labelled for this profile but unknown to the state",
                       fix=f"back it up if it holds data you need, then `docker volume rm {volume['Name']}`")
        elif owner in known and volume["Name"] not in volumes_of[owner] and LABEL_PURPOSE not in labels:
            orphans += 1
            report.add("orphan", False, f"volume {volume['Name']} is labelled for service {owner} but is neither its volume nor "
                       "its safety copy (left by an interrupted restore or swap)",
                       fix=f"back it up if it holds data you need, then `docker volume rm {volume['Name']}`")
    if not orphans:
        report.add("orphan", True, "no unknown containers or volumes with this profile's labels")


def _check_ports(services: list[ServiceRecord], report: Report) -> None:
    owners: dict[int, str] = {}
    clashes = 0
    for service in services:
        for port in service.host_ports.values():
            if port in owners:
                clashes += 1
                report.add("ports", False, f"host port {port} is assigned to both {owners[port]} and {service.slug}",
                           fix="remove one and add it again with another --port")
            owners[port] = service.slug
    if not clashes:
        report.add("ports", True, f"{len(owners)} host ports assigned, no two services share one")


def apply_fixes(manager: ServiceManager, report: Report, timeout: float = 120.0, on_outcome=None) -> None:
    """Apply the safe fixes. File and network fixes run first; the services to start or
    repair are then brought up in parallel (one thread and database connection each), each
    waiting at most `timeout` seconds; `on_outcome(finding)` hears of each as it ends."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    pending = [f for f in report.findings if not f.ok and f.action]
    for finding in [f for f in pending if f.action in (CHMOD, CREATE_NETWORK, CREATE_ENV_NETWORK, SWEEP_VERIFY)]:
        _apply(manager, finding, timeout)
        if on_outcome:
            on_outcome(finding)
    services = [f for f in pending if f.action in (START, REPAIR, RECREATE)]
    if not services:
        return
    placed = []
    for finding in services:  # the target's manager and engine are opened here, in the calling thread
        try:
            target_manager = manager.for_target(manager.store.get_service_by_id(finding.target).target)
            target_manager.engine
        except PaasError as error:
            finding.fix_error = error.message.splitlines()[0]
            if on_outcome:
                on_outcome(finding)
            continue
        placed.append((target_manager, finding))
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(placed))), thread_name_prefix="paas-doctor") as pool:
        futures = [pool.submit(_apply_in_thread, target_manager, finding, timeout) for target_manager, finding in placed]
        for future in as_completed(futures):
            finding = future.result()
            if on_outcome:
                on_outcome(finding)


def _apply_in_thread(manager: ServiceManager, finding: Finding, timeout: float) -> Finding:
    own = manager.with_own_connection()  # a SQLite connection belongs to the thread that opened it
    try:
        _apply(own, finding, timeout)
    except Exception as error:  # noqa: BLE001 - one service's bug must not hide the others' outcomes
        finding.fix_error = f"{type(error).__name__}: {error}"
    finally:
        own.store.close()
    return finding


def _apply(manager: ServiceManager, finding: Finding, timeout: float) -> None:
    try:
        if finding.action == CHMOD:
            mode, path = finding.target.split(":", 1)
            _chmod_no_follow(path, int(mode, 8))
        elif finding.action == CREATE_NETWORK:
            from paas_svc.naming import LABEL_MANAGED
            from paas_svc.state.locks import blocking_lock, host_lock_path

            with blocking_lock(host_lock_path("network"), what="the host-wide network lock"):
                manager.for_target(finding.target or "local").engine.ensure_network({LABEL_MANAGED: "true"})
        elif finding.action == CREATE_ENV_NETWORK:
            environment = manager.store.get_environment(*finding.target.split("/", 1))
            manager.for_target(environment.target).ensure_env_network(environment)
        elif finding.action == START:
            service = manager.store.get_service_by_id(finding.target)
            manager.for_target(service.target).start(service, timeout)
        elif finding.action == REPAIR:
            service = manager.store.get_service_by_id(finding.target)
            manager.for_target(service.target).repair(service, timeout)
        elif finding.action == RECREATE:
            _recreate(manager.for_target(manager.store.get_service_by_id(finding.target).target), finding.target, timeout)
        elif finding.action == SWEEP_VERIFY:
            from paas_svc.usecases.backups.verify import sweep_leftovers

            sweep_leftovers(manager.for_target(finding.target or "local").engine, manager.store.profile_id())
        finding.fixed = True
    except PaasError as error:
        finding.fix_error = error.message.splitlines()[0]
    except OSError as error:
        finding.fix_error = error.strerror or str(error)


def _recreate(manager: ServiceManager, service_id: str, timeout: float) -> None:
    """A new container on the kept volume (same credentials, ports, limits), under its lock."""
    with manager.locked(manager.store.get_service_by_id(service_id), "repair") as service:
        manager.require_no_operation(service, "re-create")
        manager.recreate(service, timeout)
        manager.store.set_status(service.id, READY)
    manager.store.audit("repair", service.project, service.env, service.slug, "doctor --fix: re-created (its network was gone)")


def _chmod_no_follow(path: str, mode: int) -> None:
    """chmod the file itself: opened with O_NOFOLLOW, so a link put there since the check fails."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
