"""The live status `list`, `show` and `env export` show: the stored status plus the
container's (or Swarm task's) state, from ONE engine request per target for all rows, the
targets asked in parallel (no Docker SDK import)."""

from __future__ import annotations

from pathlib import Path

from paas_svc.engine.status import ContainerState
from paas_svc.naming import LABEL_PROFILE, LABEL_SERVICE_ID
from paas_svc.state.models import FAILED, OPERATION_STATUSES, PROVISIONING, REMOVED, STARTING, ServiceRecord

OPERATION_LABELS = {"restoring": "Restoring", "upgrading": "Upgrading", "purging": "Purging"}


def live_status(service: ServiceRecord, container: ContainerState | None, add_running: bool = True) -> str:
    """What `list` shows: Ready, Starting (after `svc add --no-wait`), Provisioning, Stopped, Failed,
    Missing, Removed, or Restoring / Upgrading / Purging, with " (interrupted)" when the command doing it died.

    `add_running` is False when no process holds the service's lock: a row still marked
    provisioning then belongs to an add that crashed, which is Failed until repaired; a row
    marked restoring, upgrading or purging belongs to an interrupted operation that only
    `paas svc repair` finishes or rolls back.
    """
    if service.status == REMOVED:
        return "Removed"
    if service.status in OPERATION_STATUSES:
        label = OPERATION_LABELS[service.status]
        return label if add_running else f"{label} (interrupted)"
    if service.status == FAILED or (service.status == PROVISIONING and not add_running):
        return "Failed"
    if service.status == PROVISIONING:
        return "Provisioning"  # an add is running; its container may not exist yet
    if container is None:
        return "Missing"
    if container.state in ("dead", "restarting", "failed"):
        return "Failed"
    if container.state in ("pending", "starting"):  # Swarm: waiting for its node, or starting on it
        return container.state.capitalize()
    if container.state == "running":
        return "Starting" if service.status == STARTING else "Ready"
    return "Stopped"


UNREACHABLE = "Unreachable"


def live_statuses(home: Path, profile_id: str, services: list[ServiceRecord], store=None) -> dict[str, str]:
    """Live status per service id: ONE engine request per target for all rows, whatever their
    number. With several targets, one that does not answer shows its services Unreachable."""
    states, unreachable = target_states(profile_id, home, store, sorted({service.target for service in services}))
    return {
        service.id: UNREACHABLE if service.target in unreachable
        else live_status(service, states.get(service.id), add_running=_lock_held(home, service))
        for service in services
    }


def target_states(profile_id: str, home: Path, store, targets: list[str], tolerant: bool = False) -> tuple[dict, set[str]]:
    """Container states per service id on the given targets, and the targets that did not
    answer. One target is asked directly (its failure raises: a single-target command says
    why, unless `tolerant`), several in parallel."""
    if not targets:
        return {}, set()
    if len(targets) == 1 and not tolerant:
        return live_states(profile_id, home, store, targets[0]), set()
    return _states_in_parallel(profile_id, home, store, targets)


def _states_in_parallel(profile_id: str, home: Path, store, targets: list[str]) -> tuple[dict, set[str]]:
    from concurrent.futures import ThreadPoolExecutor

    from paas_svc.engine.targets import get_target
    from paas_svc.errors import PaasError

    resolved = [get_target(store, name) for name in targets]  # the store stays in this thread

    def ask(target):
        try:
            return _target_states(profile_id, home, target)
        except PaasError:
            return None

    with ThreadPoolExecutor(max_workers=len(resolved)) as pool:
        answers = list(pool.map(ask, resolved))
    states: dict = {}
    for answer in answers:
        states.update(answer or {})
    return states, {target for target, answer in zip(targets, answers) if answer is None}


def _lock_held(home: Path, service: ServiceRecord) -> bool:
    if service.status != PROVISIONING and service.status not in OPERATION_STATUSES:
        return True
    from paas_svc.state.locks import service_lock_held  # tests the lock without taking it

    return service_lock_held(home, service.env_id, service.slug)


def live_states(profile_id: str, home: Path | None = None, store=None, target_name: str = "local") -> dict[str, ContainerState]:
    """Container (or Swarm service) state per service id, from ONE request to the target."""
    if target_name == "local":
        from paas_svc.engine.status import list_containers

        states = list_containers([f"{LABEL_PROFILE}={profile_id}"])
        return {state.labels.get(LABEL_SERVICE_ID, ""): state for state in states}
    from paas_svc.engine.targets import get_target

    return _target_states(profile_id, home, get_target(store, target_name))


def _target_states(profile_id: str, home: Path, target) -> dict[str, ContainerState]:
    from paas_svc.engine import status as docker_status
    from paas_svc.engine.targets import endpoint

    labels = [f"{LABEL_PROFILE}={profile_id}"]
    point = endpoint(home, target)
    if target.swarm:
        states = docker_status.list_swarm_services(labels, point)
    else:
        states = docker_status.list_containers(labels, point)
    return {state.labels.get(LABEL_SERVICE_ID, ""): state for state in states}
