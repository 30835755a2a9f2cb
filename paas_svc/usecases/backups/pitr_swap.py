"""Putting a recovered data directory in a service's place (the last step of
`svc restore --to-time`) on a Swarm target, where a service cannot be swapped onto a new volume
(DataOps.swap_supported), with today's restore's safety: a safety backup of the current data
first, the operation recorded before the first destructive step (a crash leaves the service
'Restoring (interrupted)', and `svc repair` puts the safety backup back).

The recovered directory is in a throwaway volume, checked already (promoted, answering). It is
copied into the service's volume through the engine (get_archive / put_archive: remote engines
too); PostgreSQL was shut down cleanly in the throwaway, so the copy opens without recovery.
"""

from __future__ import annotations

import time
from pathlib import Path

from paas_svc.errors import Interrupted, PaasError
from paas_svc.kinds.strategy import BackupFailed
from paas_svc.state.models import READY, RESTORING, ServiceRecord

SHUTDOWN_SECONDS = 60


def swap_in_recovered(data_ops, service: ServiceRecord, throwaway: ServiceRecord, timeout: float) -> Path | None:
    """Called holding the service's lock. Returns the safety backup (None: there was no data to
    save: the container or the volume is gone)."""
    from paas_svc.usecases.lifecycle import service_labels

    engine, manager, store = data_ops.engine, data_ops.manager, data_ops.store
    data_dir = service.spec["volume"].rstrip("/")
    parent = data_dir.rpartition("/")[0]
    state = engine.inspect_container(service.container_name)
    safety = None
    if engine.volume_exists(service.volume_name):
        if state is None or not state.running:  # its data is read by pg_dump in it: up on its volume first
            data_ops.step(f"Starting {service.slug} on its volume for the safety backup")
            manager.provision(service)
            manager.wait_ready(service, timeout)
        data_ops.step(f"Taking a safety backup of {service.slug}'s current data")
        safety = data_ops.safety_backup(service, "pre-restore").path
        data_ops.step(f"Safety backup: {safety}")
    engine.stop(throwaway.container_name, timeout=SHUTDOWN_SECONDS)  # a clean shutdown: the copy needs no recovery
    if safety is not None:  # with nothing to put back, a failed copy is simply run again
        store.begin_operation(service.id, RESTORING, safety_backup=str(safety),
                              source=f"point-in-time recovery ({throwaway.volume_name})")
    started = time.monotonic()
    try:
        with manager.phase("restore"):
            manager.checkpoint("restore.recorded")
            data_ops.step(f"Putting the recovered data in place of {service.slug}'s volume {service.volume_name}")
            engine.remove_container(service.container_name)
            engine.remove_volume(service.volume_name)
            engine.ensure_volume(service.volume_name, service_labels(store.profile_id(), service))
            engine.create_container(manager.container_spec(service))
            # get_archive of /x/data names its entries data/...: extracted into /x, they land in the volume
            engine.put_archive(service.container_name, parent or "/", engine.get_archive(throwaway.container_name, data_dir))
            manager.checkpoint("restore.copied")
            engine.start(service.container_name)
            manager.wait_ready(service, timeout)
            manager.checkpoint("restore.done")
    except (Interrupted, KeyboardInterrupt) as error:
        raise interrupted(error, service) from None
    except PaasError as error:
        store.audit("restore-failed", service.project, service.env, service.slug, f"pitr safety={safety}")
        if safety is None:
            raise BackupFailed(f"Putting the recovered data in place of {service.slug} failed: {error.message}",
                               hint="There was no data before it to lose; run the restore again.") from None
        raise BackupFailed(f"Putting the recovered data in place of {service.slug} failed: {error.message}",
                           hint=f"The data as it was before is saved in {safety}. The service shows 'Restoring (interrupted)'; "
                                f"`paas svc repair {service.slug} --env {service.env}` puts it back.") from None
    if safety is not None:
        store.end_operation(service.id, READY)
    data_ops.step(f"Swapped in {time.monotonic() - started:.1f}s")
    return safety



def interrupted(error: BaseException, service: ServiceRecord) -> Interrupted:
    signum = error.signum if isinstance(error, Interrupted) else 2
    return Interrupted(signum).recorded(
        f"interrupted: the point-in-time restore of {service.slug} did not finish; the service shows as interrupted.",
        hint=f"Run `paas svc repair {service.slug} --env {service.env}` to put back the data it had before.")
