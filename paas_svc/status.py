"""The live status `list`, `show` and `env export` show: the stored status plus the
container's state, from ONE engine request for all rows (no Docker SDK import)."""

from __future__ import annotations

from pathlib import Path

from paas_svc.docker_status import ContainerState
from paas_svc.models import FAILED, PROVISIONING, REMOVED, STARTING, ServiceRecord
from paas_svc.naming import LABEL_PROFILE, LABEL_SERVICE_ID


def live_status(service: ServiceRecord, container: ContainerState | None, add_running: bool = True) -> str:
    """What `list` shows: Ready, Starting, Provisioning, Stopped, Failed, Missing (or Removed).

    `add_running` is False when no process holds the service's lock: a row still marked
    provisioning then belongs to an add that crashed, which is Failed until repaired.
    """
    if service.status == REMOVED:
        return "Removed"
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
        service.id: live_status(service, states.get(service.id), add_running=_add_running(home, service))
        for service in services
    }


def _add_running(home: Path, service: ServiceRecord) -> bool:
    if service.status != PROVISIONING:
        return True
    from paas_svc.locks import add_in_progress

    return add_in_progress(home, service.env_id, service.slug)


def live_states(profile_id: str) -> dict[str, ContainerState]:
    """Container state per service id, from ONE engine request."""
    from paas_svc.docker_status import list_containers

    states = list_containers([f"{LABEL_PROFILE}={profile_id}"])
    return {state.labels.get(LABEL_SERVICE_ID, ""): state for state in states}
