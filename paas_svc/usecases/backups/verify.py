"""`paas backup verify`: restore a backup into a throwaway container of the same template on a
throwaway volume, check that the engine starts, that the kind's readiness passes and a
kind-specific sanity check (each kind module's `sanity_check`: table count for PostgreSQL,
key count for Redis, ...), record the result, and remove everything it made.

The throwaway resources carry the profile's labels plus `paas.purpose=verify`, so the test
sweep and `paas doctor` (which reports and removes leftovers of a killed verify) know them.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from paas_svc.errors import PaasError
from paas_svc.state.models import READY, ServiceRecord
from paas_svc.usecases.backups import records as rec
from paas_svc.usecases.backups.manager import Backups, check_origin

LABEL_PURPOSE = "paas.purpose"
PURPOSE_VERIFY = "verify"
LABEL_VERIFY_OF = "paas.verify-of"
VERIFY_READY_TIMEOUT = 120.0


@dataclass
class VerifyResult:
    ok: bool
    detail: str
    location: str
    record_id: int | None
    elapsed_seconds: float


def verify_labels(profile_id: str, throwaway: ServiceRecord, source: ServiceRecord) -> dict[str, str]:
    from paas_svc.usecases.lifecycle import service_labels

    return {**service_labels(profile_id, throwaway), LABEL_PURPOSE: PURPOSE_VERIFY, LABEL_VERIFY_OF: source.id}


def throwaway_of(service: ServiceRecord, taken_ports: set[int]) -> ServiceRecord:
    from paas_svc.usecases.lifecycle import pick_host_port

    ports: dict[int, int] = {}
    for container_port in service.host_ports:
        ports[container_port] = pick_host_port(taken_ports | set(ports.values()))
    return dataclasses.replace(service, id=f"verify-{secrets.token_hex(4)}", host_ports=ports, status=READY)


def verify_backup(backups: Backups, service: ServiceRecord, record: rec.BackupRecord | None, now: datetime,
                  location: str | None = None, destination: str | None = None,
                  ready_timeout: float = VERIFY_READY_TIMEOUT, allow_other_service: bool = False) -> VerifyResult:
    """Verify `record` (or a file/URL at `location`); never raises for a bad backup: the result says why.
    The backup is fetched and checked as a restore would (encrypted where it must be, the recorded
    sha256, the service it is of), so a swapped file fails here too."""
    started = time.monotonic()
    if record is not None:
        location, destination = record.location, record.destination
    ok, detail = True, ""
    fetched: Path | None = None
    try:
        fetched = backups.fetch(service, destination or "", location, record=record, allow_other_service=allow_other_service)
        detail = _restore_into_throwaway(backups, service, fetched, location, ready_timeout, allow_other_service)
    except PaasError as error:
        ok, detail = False, error.message
    finally:
        if fetched is not None and fetched.parent == backups.data_ops.scratch_dir:
            fetched.unlink(missing_ok=True)
    if record is not None:
        backups.records.mark_verified(record.id, rec.format_time(now), ok, detail)
        _notify(backups, service, record, ok, detail, now)
    backups.store.audit("backup-verify", service.project, service.env, service.slug,
                        f"location={location} ok={int(ok)}")
    return VerifyResult(ok, detail, location, record.id if record else None, time.monotonic() - started)


def _notify(backups: Backups, service: ServiceRecord, record: rec.BackupRecord, ok: bool, detail: str, now: datetime) -> None:
    """A recorded backup that does not restore is an alert (one message); the next good one clears it."""
    from paas_svc.usecases.backups import notify

    where = record.destination or "local"
    if ok:
        notify.clear_event(backups.store, event=notify.VERIFY_FAILED, service=service, destination=where, now=now)
        return
    next_command = f"paas backup verify {service.slug} {record.id} --project {service.project} --env {service.env}"
    notify.raise_event(backups.store, event=notify.VERIFY_FAILED, service=service, error=f"backup {record.id}: {detail}",
                       destination=where, next_command=next_command, now=now)


def _restore_into_throwaway(backups: Backups, service: ServiceRecord, path: Path, location: str, ready_timeout: float,
                            allow_other_service: bool) -> str:
    from paas_svc.kinds import strategy_for

    data_ops = backups.ops_for(service)  # the throwaway runs on the service's own target
    engine = data_ops.engine
    checked = data_ops.check_backup(service, path)  # header, size, checksum, kind, payload format
    check_origin(service, checked.header, location, allow_other_service)
    strategy = strategy_for(service)
    throwaway = throwaway_of(service, backups.store.used_host_ports())
    labels = verify_labels(backups.store.profile_id(), throwaway, service)
    base_ctx = data_ops.context(throwaway, ready_timeout)

    def container_spec(extra_environment=None):
        return dataclasses.replace(base_ctx.container_spec(extra_environment), labels=labels)

    ctx = dataclasses.replace(base_ctx, labels=labels, container_spec=container_spec)
    data_ops.step(f"Restoring into a throwaway {service.template} container {throwaway.container_name}")
    try:
        engine.ensure_volume(throwaway.volume_name, labels)
        engine.create_container(container_spec())
        engine.start(throwaway.container_name)
        ctx.wait_ready()
        strategy.restore(engine, ctx, checked)
        ctx.wait_ready()
        found = _sanity_check(engine, ctx, service)
    finally:
        engine.remove_container(throwaway.container_name)
        engine.remove_volume(throwaway.volume_name)
    return f"restored and ready; {found}"


def _sanity_check(engine, ctx, service: ServiceRecord) -> str:
    """The kind's own check of restored data (`sanity_check` in its paas_svc.kinds module: table
    count for PostgreSQL and MySQL, key count for Redis, ...); kinds without one: readiness only."""
    from paas_svc.kinds import kind_hook, kind_of

    check = kind_hook(kind_of(service.template, service.spec), "sanity_check")
    return check(engine, ctx) if check is not None else "readiness only"


def sweep_leftovers(engine, profile_id: str) -> list[str]:
    """Remove what a killed verify left (containers and volumes labelled paas.purpose=verify)."""
    from paas_svc.naming import LABEL_PROFILE

    removed = []
    filters = [f"{LABEL_PROFILE}={profile_id}", f"{LABEL_PURPOSE}={PURPOSE_VERIFY}"]
    for container in engine.list_containers(filters):
        engine.remove_container(container.name)
        removed.append(container.name)
    for volume in engine.list_volumes(filters):
        engine.remove_volume(volume["Name"])
        removed.append(volume["Name"])
    return removed


