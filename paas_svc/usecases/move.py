"""`paas svc move SLUG --node N2`: a Swarm service moves to another node WITH its data.

A Swarm never moves our services by itself (the placement constraint pins them: a volume
does not follow a task). Moving is explicit: safety backup, re-create pinned to N2 on a new
volume there, restore, check it answers, then remove the old volume on N1. Until the old
volume is removed, any failure puts the service back on N1 on its untouched volume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from paas_svc.errors import Conflict, InvalidInput, PaasError
from paas_svc.kinds import strategy_for
from paas_svc.kinds.strategy import read_backup
from paas_svc.state.models import READY, ServiceRecord
from paas_svc.usecases.data import DataOps


@dataclass
class MoveResult:
    service: ServiceRecord
    old_node: str
    new_node: str
    backup: Path
    elapsed_seconds: float
    note: str | None = None  # a clean-up left to the user


def move_service(data_ops: DataOps, service: ServiceRecord, node: str, timeout: float = 120.0) -> MoveResult:
    started = time.monotonic()
    manager, store = data_ops.manager, data_ops.store
    if not manager.target.swarm:
        raise InvalidInput(f"{service.slug} runs on {service.target}, not a Swarm target: there is no node to move to.")
    old_node = service.node
    if node == old_node:
        raise InvalidInput(f"{service.slug} is already on node {node}.")
    engine = manager.engine
    new_node, new_address = engine.choose_node(node, {})  # refuses an unknown, down or drained node
    strategy = strategy_for(service)
    data_ops.require_container(service, strategy)
    with manager.locked(service, f"moving it to {node}") as service:
        manager.require_no_operation(service, "move")
        data_ops.step(f"Backing up {service.slug} on {old_node}")
        safety = data_ops.safety_backup(service, f"move-from-{old_node}").path
        backup = read_backup(safety)
        store.audit("move-start", service.project, service.env, service.slug,
                    f"from={old_node} to={new_node} backup={safety}")  # recorded before anything is removed
        old_address = service.spec.get("publish_address")
        engine.remove_container(service.container_name)  # the old volume stays on the old node
        try:
            _pin(store, service, new_node, new_address)
            data_ops.step(f"Re-creating {service.slug} on {new_node}")
            manager.recreate(service, timeout)
            data_ops.step(f"Restoring the data on {new_node}")
            strategy.restore(engine, data_ops.context(service, timeout), backup)
            manager.wait_ready(service, timeout)  # the check that it answers, with the restored data
        except BaseException as error:
            _put_back(manager, store, service, old_node, old_address)
            if isinstance(error, PaasError):
                error.message += f"\n{service.slug} is back on {old_node} with its data; the backup is {safety}."
            raise
        store.set_status(service.id, READY)
        store.audit("move", service.project, service.env, service.slug, f"from={old_node} to={new_node}")
        data_ops.step(f"Removing the old volume on {old_node}")
        note = None
        try:
            engine.remove_volume_on(old_node, service.volume_name)
        except PaasError as error:  # the move is done; only the clean-up is left
            note = (f"The old volume {service.volume_name} is still on {old_node} ({error.message}); "
                    f"remove it there with `docker volume rm {service.volume_name}`.")
    return MoveResult(store.get_service_by_id(service.id), old_node, new_node, safety, time.monotonic() - started, note)


def _pin(store, service: ServiceRecord, node: str, address: str | None) -> None:
    service.node = node
    if address is None:
        service.spec.pop("publish_address", None)
    else:
        service.spec["publish_address"] = address
    store.set_service_node(service.id, node, service.spec)


def _put_back(manager, store, service: ServiceRecord, node: str, address: str | None) -> None:
    engine = manager.engine
    try:
        engine.remove_container(service.container_name)
        new_node = service.node
        _pin(store, service, node, address)
        if new_node != node:
            engine.remove_volume_on(new_node, service.volume_name)
        manager.recreate(service, None)
    except PaasError as error:
        raise Conflict(f"Putting {service.slug} back on {node} failed too: {error.message}",
                       hint=f"Its data is on {node} in volume {service.volume_name}; `paas svc repair {service.slug}`.") from None

