"""What `paas doctor` checks about backups: overdue or failing schedules, the host scheduler
entry, and leftovers of a killed `backup verify`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from paas_svc.errors import PaasError


@dataclass
class BackupFinding:
    check: str
    ok: bool
    message: str
    fix: str | None = None
    sweep_verify: bool = False  # doctor --fix may remove the throwaway verify resources


def schedule_findings(manager, now: datetime | None = None) -> list[BackupFinding]:
    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.backups.records import BackupRecords
    from paas_svc.usecases.backups.scheduler_install import installed

    store = manager.store
    records = BackupRecords(store)
    findings = []
    schedules = records.schedules()
    if schedules:
        from paas_svc.usecases.backups import notify
        from paas_svc.usecases.backups.manager import Backups
        from paas_svc.usecases.data import DataOps

        when = now or clock.now()
        late = Backups(DataOps(manager)).overdue(when)
        for item in late:
            if item.service is not None and not item.schedule.failures:  # a failing one is already backup-failed
                try:  # sent by the next run-due; doctor reports whatever becomes of it
                    notify.raise_event(store, event=notify.SCHEDULE_OVERDUE, service=item.service, error=item.reason,
                                       destination=item.schedule.destination or "local", now=when)
                except PaasError:
                    pass
            where = f"{item.service.project}/{item.service.env}/{item.service.slug}" if item.service else item.schedule.service_id
            findings.append(BackupFinding("backups", False, f"backup of {where} to {item.schedule.destination or 'local'} is overdue: {item.reason}",
                                          fix="see `paas backup list`; `paas backup run-due` retries it"))
        if not late:
            findings.append(BackupFinding("backups", True, f"{len(schedules)} backup schedule(s), none overdue"))
        if not installed(manager.home, store.profile_id()):
            findings.append(BackupFinding("backups", False, "backup schedules exist but the host scheduler entry that runs them is missing",
                                          fix="`paas backup schedule SLUG --every ...` on any schedule installs it again"))
    from paas_svc.usecases.backups.pitr import pitr_findings

    for check, ok, text, fix in pitr_findings(manager, now or clock.now()):  # WAL archiving that has stalled
        findings.append(BackupFinding(check, ok, text, fix=fix))
    return findings


def verify_leftover_findings(engine, profile_id: str) -> list[BackupFinding]:
    """Throwaway containers and volumes of a killed `backup verify` on this engine."""
    from paas_svc.naming import LABEL_PROFILE
    from paas_svc.usecases.backups.verify import LABEL_PURPOSE, PURPOSE_VERIFY

    filters = [f"{LABEL_PROFILE}={profile_id}", f"{LABEL_PURPOSE}={PURPOSE_VERIFY}"]
    leftovers = [c.name for c in engine.list_containers(filters)] + [v["Name"] for v in engine.list_volumes(filters)]
    if not leftovers:
        return []
    return [BackupFinding("backups", False, f"a killed `backup verify` left {', '.join(leftovers)}",
                          fix="paas doctor --fix removes them (throwaway copies)", sweep_verify=True)]
