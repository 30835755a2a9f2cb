"""`paas backup schedule SLUG --every ...`, `schedule list`, `schedule rm SLUG`: the use cases
behind the local command and the server's routes for a logged-in CLI (api/client_routes.py),
so both print the same. The host's timer is the one of the process that runs them: a logged-in
CLI schedules on the server's timer, with the server's environment (its keys)."""

from __future__ import annotations

import os
from pathlib import Path

from paas_svc.usecases.actions import Shown


def schedule_json(row, service) -> dict:
    return {"id": row.id, "service": where(service), "every": row.every, "keep_last": row.keep_last,
            "keep_daily": row.keep_daily, "keep_weekly": row.keep_weekly, "destination": row.destination or "local",
            "verify": row.verify, "next_due_at": row.next_due_at, "last_success_at": row.last_success_at,
            "last_error": row.last_error, "failures": row.failures}


def where(service) -> str | None:
    return f"{service.project}/{service.env}/{service.slug}" if service is not None else None


def add_schedule(backups, vault, home: Path, service, every: str, keep: int | None, keep_daily: int | None,
                 keep_weekly: int | None, to: str | None, verify: bool, store_keys: bool, now) -> Shown:
    """Add or replace the service's schedule and install the host's timer with the first one."""
    from paas_svc.usecases.backups.retention import make_policy
    from paas_svc.usecases.backups.scheduler_install import prepare_entry, sync
    from paas_svc.usecases.backups.timer import timer_users

    store = backups.store
    policy = make_policy(keep, keep_daily, keep_weekly)
    # Refused here, before anything is stored: a key the timer would not get, a control character in the entry.
    environment = prepare_entry(home, store.profile_id(), os.environ, store_keys)
    if service.secret is not None:
        vault.credentials(service)  # the key this process (and so the timer) has opens the service's credentials
    row, replaced = backups.set_schedule(service, every, policy, to or "", verify, now)
    store.audit("backup-schedule", service.project, service.env, service.slug,
                f"every={row.every} keep={policy.describe()} to={to or 'local'} verify={int(verify)}")
    entry = sync(home, store.profile_id(), timer_users(store), environment)
    return Shown(f"{'Changed' if replaced else 'Scheduled'} backups of {where(service)}: every {row.every}, "
                 f"keep {policy.describe()}, to {to or 'local store'}; next at {row.next_due_at}",
                 schedule_json(row, service), [entry.note] if entry is not None and entry.note else [])


def list_schedules(backups) -> list[dict]:
    """Every schedule (`backup schedule list --json`); `service` is None when it is gone."""
    return [schedule_json(row, service) for row, service in backups.schedules()]


def remove_schedules(backups, home: Path, service, to: str | None) -> Shown:
    """Remove the service's schedules (to `to` only, when given); the timer goes with the last one."""
    from paas_svc.errors import NotFound
    from paas_svc.usecases.backups.scheduler_install import sync
    from paas_svc.usecases.backups.timer import timer_users

    removed = backups.records.remove_schedules(service.id, to)
    if not removed:
        raise NotFound(f"{where(service)} has no backup schedule{f' to {to}' if to else ''}.",
                       hint="See them with `paas backup schedule list`.")
    backups.store.audit("backup-unschedule", service.project, service.env, service.slug, f"removed={removed}")
    entry = sync(home, backups.store.profile_id(), timer_users(backups.store))
    return Shown(f"Removed {removed} backup schedule(s) of {where(service)}; its backups are kept.",
                 {"service": where(service), "removed": removed}, [entry.note] if entry is not None and entry.note else [])
