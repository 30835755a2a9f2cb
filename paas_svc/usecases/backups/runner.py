"""`paas backup run-due`: what the host's timer calls. Takes every backup that is due, applies
retention, verifies when the schedule asks, and records each outcome. A failed backup keeps its
due time, so the next run retries it. One run at a time per profile (a lock): a second run
started meanwhile does nothing and says so."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator

from paas_svc.errors import PaasError
from paas_svc.usecases.backups import notify
from paas_svc.usecases.backups import records as rec
from paas_svc.usecases.backups.manager import Backups

LOCK_NAME = "backup-run-due.lock"


@dataclass
class RunItem:
    project: str
    env: str
    slug: str
    destination: str
    ok: bool
    record_id: int | None = None
    location: str | None = None
    size_bytes: int | None = None
    error: str | None = None
    deleted: list[str] = field(default_factory=list)
    verified: bool | None = None
    verify_detail: str | None = None


@dataclass
class RunReport:
    ran: bool  # False: another run held the lock
    now: str
    items: list[RunItem] = field(default_factory=list)
    scheduler_note: str | None = None
    notifications: notify.DeliveryReport | None = None  # the queue drained after the backups
    renewals: list = field(default_factory=list)  # usecases/tls.RenewalOutcome: TLS certificates renewed (or not)
    pitr: list = field(default_factory=list)  # PitrRunItem of each archived PostgreSQL service (usecases/backups/pitr)

    @property
    def failures(self) -> int:
        return (sum(1 for item in self.items if not item.ok or item.verified is False)
                + sum(1 for renewal in self.renewals if renewal.error)
                + sum(1 for item in self.pitr if item.error))


@contextmanager
def run_lock(home) -> Iterator[bool]:
    folder = home / "locks"
    folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def run_due(backups: Backups, now: datetime) -> RunReport:
    from paas_svc.usecases.backups.cron import parse_schedule

    report = RunReport(ran=False, now=rec.format_time(now))
    with run_lock(backups.home) as locked:
        if not locked:
            return report
        report.ran = True
        for late in backups.overdue(now):  # missed while the timer did not run (failures are backup-failed)
            if late.service is not None and not late.schedule.failures:
                notify.raise_event(backups.store, event=notify.SCHEDULE_OVERDUE, service=late.service, error=late.reason,
                                   destination=late.schedule.destination or "local", now=now)
        for schedule, service in backups.schedules():
            if service is None or rec.parse_time(schedule.next_due_at) > now:
                continue
            item = RunItem(service.project, service.env, service.slug, schedule.destination or "local", ok=False)
            report.items.append(item)
            try:
                record = backups.take(service, schedule.destination, now, schedule_id=schedule.id)
            except PaasError as error:  # e.g. an interrupted restore: refused, and retention keeps what it has
                item.error = f"{error.message} {error.hint}" if error.hint else error.message  # the way out too
                backups.records.mark_attempt(schedule.id, rec.format_time(now), error.message, None)
                notify.raise_event(backups.store, event=notify.BACKUP_FAILED, service=service, error=item.error,
                                   destination=item.destination, now=now)
                continue
            for healthy in (notify.BACKUP_FAILED, notify.SCHEDULE_OVERDUE):
                notify.clear_event(backups.store, event=healthy, service=service, destination=item.destination, now=now)
            item.ok, item.record_id, item.location, item.size_bytes = True, record.id, record.location, record.size_bytes
            next_due = parse_schedule(schedule.every).next_after(now)
            backups.records.mark_attempt(schedule.id, rec.format_time(now), None, rec.format_time(next_due))
            try:
                item.deleted = [b.location for b in backups.apply_retention(schedule)]
            except PaasError as error:  # the backup itself is safe; old ones are retried next time
                item.error = f"retention: {error.message}"
            if schedule.verify:
                from paas_svc.usecases.backups.verify import verify_backup

                result = verify_backup(backups, service, record, now)
                item.verified, item.verify_detail = result.ok, result.detail
        from paas_svc.usecases.backups.pitr import Pitr

        pitr = Pitr(backups)
        report.pitr = pitr.run_due(now)  # ship the WAL spools, base backups when due, retention
        if report.pitr:
            _notify_archiving(backups, pitr, report.pitr, now)
        # The same timer renews TLS certificates with less than 30 days left (90-day certificates).
        if any(service.spec.get("tls") for service in backups.store.list_services()):
            from paas_svc.usecases.tls import renew_due

            report.renewals = renew_due(backups.manager, now)
        # After the backups, within a small bound: a receiver that is down or hangs never delays them.
        report.notifications = notify.deliver_due(backups.store, now, vault=backups.manager.vault)
    return report


def _notify_archiving(backups: Backups, pitr, items, now: datetime) -> None:
    """Stalled WAL archiving is an alert (`archiving-stalled`): a shipping that failed this run,
    or what `pitr status` calls a problem (archive_command failing, nothing shipped for 5 minutes
    while there are writes, the spool filling). Its end is one `recovered` message."""
    failed = {(item.project, item.env, item.slug): item.error for item in items if item.error}
    for status in pitr.statuses(None, now):
        service = status.service
        problems = [failed[key]] if (key := (service.project, service.env, service.slug)) in failed else []
        problems += status.problems
        destination = status.config.destination
        if problems:
            notify.raise_event(backups.store, event=notify.ARCHIVING_STALLED, service=service, error="; ".join(problems),
                               destination=destination, now=now,
                               next_command=f"paas backup pitr status {service.slug} --project {service.project} --env {service.env}")
        else:
            notify.clear_event(backups.store, event=notify.ARCHIVING_STALLED, service=service, destination=destination, now=now)
