"""The host timer (`paas backup run-due` every minute) is wanted by backup schedules and by TLS
services, whose certificates it renews (paas_svc/usecases/tls.renew_due): installed with the
first of either, removed after the last (scheduler_install.sync)."""

from __future__ import annotations

from pathlib import Path


def timer_users(store) -> int:
    """Backup schedules, TLS services (renewals) and archived PostgreSQL services (WAL shipping,
    base backups): what needs the timer."""
    from paas_svc.usecases.backups.pitr import all_configs
    from paas_svc.usecases.backups.records import BackupRecords
    from paas_svc.usecases.tls import tls_mode

    return (BackupRecords(store).schedule_count() + sum(1 for service in store.list_services() if tls_mode(service))
            + len(all_configs(store)))


def ensure_timer(home: Path, store) -> str | None:
    """Install the timer for a new TLS service, as the first backup schedule does; its note when
    it was installed (None when it was there, or the host has no cron/systemd). A timer that
    cannot be installed fails nothing: `doctor` warns 14 days before a certificate expires."""
    from paas_svc.errors import PaasError
    from paas_svc.usecases.backups.scheduler_install import sync

    try:
        entry = sync(home, store.profile_id(), timer_users(store))
    except PaasError:
        return None
    return entry.note if entry is not None else None
