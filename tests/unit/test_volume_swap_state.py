"""The state of a restore into a new volume (migration 9): the volume a service runs on, its
safety copy, and the operation's two volumes, committed in one transaction by the swap."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from paas_svc.state.home import ensure_home
from paas_svc.state.models import READY, RESTORING, ServiceRecord
from paas_svc.state.store import MIGRATIONS, open_store


@pytest.fixture
def home(tmp_path):
    return ensure_home(tmp_path / "home")


def _record(store) -> ServiceRecord:
    environment = store.get_environment("default", "production")
    return ServiceRecord(id="abc123abc123", project="default", env="production", env_id=environment.id, slug="db",
                         template="postgres-16", image="postgres:16-alpine", spec={"port": 5432}, secret=None,
                         host_ports={5432: 40001})


def test_a_service_of_a_state_before_the_migration_keeps_its_volume(home):
    store = open_store(home)
    store.insert_service(_record(store))
    store.close()
    with sqlite3.connect(home / "state.db") as db:  # back to the schema before migration 9
        swap = next(i for i, sql in enumerate(MIGRATIONS) if "volume_generation" in sql)
        for table, column in (("services", "volume_generation"), ("services", "safety_volume"),
                              ("services", "safety_volume_at"), ("operations", "old_volume"), ("operations", "new_volume"),
                              ("operations", "new_database"), ("services", "safety_database")):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute("DROP TABLE IF EXISTS pitr_archives")  # 10 (pitr), after it
        db.execute("PRAGMA user_version = %d" % swap)
    db.close()
    service = open_store(home).get_service_by_id("abc123abc123")
    assert (service.volume_name, service.safety_volume, service.volume_generation) == ("paas-svc-abc123abc123", None, None)


def test_the_swap_commits_volume_safety_copy_and_ready_together(home):
    store = open_store(home)
    store.insert_service(_record(store))
    store.begin_operation("abc123abc123", RESTORING, source="/tmp/x.pgdump", old_volume="paas-svc-abc123abc123",
                          new_volume="paas-svc-abc123abc123-g0a0b0c0d")
    operation = store.get_operation("abc123abc123")
    assert (operation.old_volume, operation.new_volume) == ("paas-svc-abc123abc123", "paas-svc-abc123abc123-g0a0b0c0d")
    assert store.get_service_by_id("abc123abc123").volume_name == "paas-svc-abc123abc123", "the store names the old volume until the swap commits"

    store.commit_volume_swap("abc123abc123", "g0a0b0c0d", safety_volume="paas-svc-abc123abc123")
    service = store.get_service_by_id("abc123abc123")
    assert store.get_operation("abc123abc123") is None and service.status == READY
    assert (service.volume_name, service.safety_volume) == ("paas-svc-abc123abc123-g0a0b0c0d", "paas-svc-abc123abc123")
    assert service.safety_volume_at


def test_a_copy_under_another_id_never_names_the_services_volume():
    """verify's throwaway is the record under another id: its volume (which verify removes) must not be the service's."""
    service = ServiceRecord(id="abc123abc123", project="p", env="e", slug="s", template="t", image="i", spec={}, secret=None,
                            volume_generation="g0a0b0c0d")
    throwaway = dataclasses.replace(service, id="verify-1234")
    assert throwaway.volume_name != service.volume_name and "abc123abc123" not in throwaway.volume_name
