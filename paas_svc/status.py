"""The live status `list`, `show` and `env export` show: the stored status plus the
container's state, from ONE engine request for all rows (no Docker SDK import)."""

from __future__ import annotations

from pathlib import Path

from paas_svc.docker_status import ContainerState
from paas_svc.models import FAILED, OPERATION_STATUSES, PROVISIONING, REMOVED, STARTING, ServiceRecord
from paas_svc.naming import LABEL_PROFILE, LABEL_SERVICE_ID

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
    if container.state in ("dead", "restarting"):
        return "Failed"
    if container.state == "running":
        return "Starting" if service.status == STARTING else "Ready"
    return "Stopped"


def live_statuses(home: Path, profile_id: str, services: list[ServiceRecord]) -> dict[str, str]:
    """Live status per service id: ONE engine request for all rows, whatever their number."""
    states = live_states(profile_id) if services else {}
    return {
        service.id: live_status(service, states.get(service.id), add_running=_lock_held(home, service))
        for service in services
    }


def _lock_held(home: Path, service: ServiceRecord) -> bool:
    if service.status != PROVISIONING and service.status not in OPERATION_STATUSES:
        return True
    from paas_svc.locks import service_lock_held  # tests the lock without taking it

    return service_lock_held(home, service.env_id, service.slug)


def live_states(profile_id: str) -> dict[str, ContainerState]:
    """Container state per service id, from ONE engine request."""
    from paas_svc.docker_status import list_containers

    states = list_containers([f"{LABEL_PROFILE}={profile_id}"])
    return {state.labels.get(LABEL_SERVICE_ID, ""): state for state in states}
