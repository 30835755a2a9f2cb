"""The real Docker engine in tests: whether one is required here, and sweeping what a test's
profile left on it."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path


def docker_required() -> bool:
    return bool(os.environ.get("PAAS_REQUIRE_DOCKER")) or os.environ.get("CI", "").lower() in ("1", "true", "yes")


def profile_id(home: Path) -> str | None:
    database = home / "state.db"
    if not database.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=10)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'profile_id'").fetchone()
    except sqlite3.OperationalError:  # a paas process is creating the schema right now
        return None
    return row[0] if row else None


def sweep(client, label_filter: str) -> None:
    for container in client.containers.list(all=True, filters={"label": label_filter}):
        container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"label": label_filter}):
        volume.remove(force=True)
    for network in client.networks.list(filters={"label": label_filter}):  # isolated environments' own
        network.remove()
