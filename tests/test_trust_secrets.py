"""Issue 9, the secrets side: readers racing `paas key rotate`, durable rotation commits, private
and atomic output files, the home folder, and a damaged or unusable state database.

Real processes, real SQLite files, real cryptography; no Docker engine needed (services are
written straight into the state, as `svc add` would leave them).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from paas_svc.home import ensure_home
from paas_svc.models import ServiceRecord
from paas_svc.secrets.vault import Vault
from paas_svc.store import open_store
from tests.conftest import PAAS_BIN

PASSWORDS = {"cache": "pw-cache-Zq81xLm", "queue": "pw-queue-Rt55vNc", "db": "pw-db-Kk09aPo"}
PORTS = {"cache": 40001, "queue": 40002, "db": 40003}


@pytest.fixture
def home(isolated_home):
    return ensure_home(isolated_home)


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


def expected_dsn(slug: str) -> str:
    return f"redis://:{PASSWORDS[slug]}@127.0.0.1:{PORTS[slug]}/0"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([PAAS_BIN, *args], capture_output=True, text=True, timeout=120, **kwargs)


# -- readers racing `paas key rotate` ------------------------------------------------------------


def test_dsn_readers_never_fail_while_the_key_rotates(home):
    """150 `svc dsn` processes interleaved with 40 `paas key rotate` processes: every read succeeds
    with the right DSN, none talks of corruption or a purge."""
    add_services(home)
    slugs = list(PASSWORDS)
    failures: list[str] = []
    reads: list[int] = []
    rotations: list[int] = []

    def reader(worker: int) -> None:
        for number in range(50):
            slug = slugs[(worker + number) % len(slugs)]
            result = run("svc", "dsn", slug)
            reads.append(1)
            if result.returncode != 0 or result.stdout.strip() != expected_dsn(slug):
                failures.append(f"dsn {slug}: exit {result.returncode}, stdout {result.stdout!r}, stderr {result.stderr!r}")

    def rotator() -> None:
        for _ in range(40):
            result = run("key", "rotate")
            rotations.append(result.returncode)
            if result.returncode != 0:
                failures.append(f"rotate: exit {result.returncode}: {result.stderr}")

    threads = [threading.Thread(target=reader, args=(worker,)) for worker in range(3)] + [threading.Thread(target=rotator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [], "\n".join(failures[:5])
    assert len(reads) == 150 and rotations == [0] * 40
    store = open_store(home)
    assert [entry.action for entry in store.list_audit()].count("key-rotate") == 40
    assert all(Vault(store, home).credentials(s) == {"password": PASSWORDS[s.slug]} for s in store.list_services())
