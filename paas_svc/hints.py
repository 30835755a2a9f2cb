"""The commands that move a user forward, spelled once so every message gives the same one.

A service that is not running (stopped, exited, container missing, add interrupted or
failed) has one fix whichever command notices it: `paas svc repair`. A removed service
(volume kept) comes back with `paas svc add` and its original template.
"""

from __future__ import annotations

BACKUP_DIR_NAME = "backups"  # PAAS_HOME/backups: final, safety and pre-upgrade backups


def repair_command(slug: str, env: str) -> str:
    return f"paas svc repair {slug} --env {env}"


def reattach_command(slug: str, env: str, template: str) -> str:
    return f"paas svc add {slug} --env {env} --template {template}"


def backups_of(home, project: str, env: str, slug: str) -> list:
    """Backup files paas wrote for this service into PAAS_HOME/backups, newest name last (the
    timestamp after the slug keeps `cache` from matching `cache-db`'s backups)."""
    folder = home / BACKUP_DIR_NAME
    try:
        return sorted(path for path in folder.glob(f"{project}-{env}-{slug}-[0-9]*") if path.is_file())
    except OSError:
        return []
