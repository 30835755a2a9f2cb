"""Services written straight into a real state database (real encrypted credentials), as
`svc add` leaves them, for the tests that need rows but no engine; and the audit log read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from paas_svc.secrets.vault import Vault
from paas_svc.state.models import ServiceRecord
from paas_svc.state.store import open_store

PASSWORD = "pw-cache-Zq81xLm40aa"  # the password stored_service stores


def stored_service(home: Path, slug: str = "cache", env: str = "production", status: str = "ready",
                   host_port: int = 40001):
    """A service row (with real encrypted credentials) as `svc add` leaves it, without an engine."""
    from paas_svc.catalog import get_template
    from paas_svc.state.home import ensure_home
    from paas_svc.usecases.lifecycle import spec_from_template

    ensure_home(home)
    store = open_store(home)
    try:
        template = get_template("redis-7")
        environment = store.get_environment("default", env)
        vault = Vault(store, home)
        vault.box(create=True)
        record = ServiceRecord(
            id=f"{slug}{env}"[:12].ljust(12, "0"), project="default", env=env, env_id=environment.id, slug=slug,
            template=template.key, image=template.image, spec=spec_from_template(template),
            secret=vault.encrypt({"password": PASSWORD}), host_ports={template.port: host_port}, status=status)
        store.insert_service(record)
        if status != "provisioning":
            store.set_status(record.id, status)
    finally:
        store.close()
    return record


def audit_actions(home: Path) -> list[str]:
    with sqlite3.connect(home / "state.db") as db:
        return [row[0] for row in db.execute("SELECT action FROM audit ORDER BY id")]


# The rows add_services writes: Redis services, each with its own password and host port.
PASSWORDS = {"cache": "pw-cache-Zq81xLm", "queue": "pw-queue-Rt55vNc", "db": "pw-db-Kk09aPo"}
PORTS = {"cache": 40001, "queue": 40002, "db": 40003}


def add_services(home: Path, slugs=("cache", "queue", "db")) -> None:
    store = open_store(home)
    vault = Vault(store, home)
    environment = store.get_environment("default", "production")
    for slug in slugs:
        store.insert_service(ServiceRecord(
            id=f"{slug:x<12}"[:12], project="default", env="production", env_id=environment.id, slug=slug,
            template="redis-7", image="redis:7-alpine", spec={"port": 6379, "dsn": "redis://:{password}@{host}:{port}/0"},
            secret=vault.encrypt({"password": PASSWORDS[slug]}), host_ports={6379: PORTS[slug]}, status="Ready"))
    store.close()
