"""The SQLite store and the key handling, against real SQLite files and the real cryptography library."""

import sqlite3
import stat

import pytest

from paas_svc.errors import Conflict, NotFound, SecretsError, StateError
from paas_svc.secrets.vault import Vault
from paas_svc.state.home import ensure_home
from paas_svc.state.models import ServiceRecord
from paas_svc.state.store import MIGRATIONS, open_store


@pytest.fixture
def home(isolated_home):
    return ensure_home(isolated_home)


def _record(store, env="production", slug="cache", service_id="abc123abc123"):
    environment = store.get_environment("default", env)
    return ServiceRecord(id=service_id, project="default", env=env, env_id=environment.id, slug=slug, template="redis-7",
                         image="redis:7-alpine", spec={"port": 6379, "dsn": "redis://:{password}@{host}:{port}/0"},
                         secret=None, host_ports={6379: 40001})


def test_first_open_creates_default_project_and_envs(home):
    store = open_store(home)
    assert [p.name for p in store.list_projects()] == ["default"]
    assert [e.name for e in store.list_environments("default")] == ["development", "staging", "production"]
    assert store.path.stat().st_mode & 0o777 == 0o600
    assert store.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_reopen_does_not_migrate_twice(home):
    first = open_store(home).profile_id()
    assert open_store(home).profile_id() == first
    assert len(open_store(home).list_projects()) == 1


def test_home_folder_is_private(home):
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_new_project_gets_three_envs(home):
    store = open_store(home)
    store.create_project("shop")
    assert [e.name for e in store.list_environments("shop")] == ["development", "staging", "production"]
    with pytest.raises(Conflict):
        store.create_project("shop")


def test_duplicate_slug_in_same_env_conflicts_but_not_across_envs(home):
    store = open_store(home)
    store.insert_service(_record(store))
    with pytest.raises(Conflict, match="already exists"):
        store.insert_service(_record(store, service_id="def456def456"))
    store.insert_service(_record(store, env="staging", service_id="def456def456"))
    assert store.environments_with_slug("default", "cache") == ["staging", "production"]


def test_env_rm_refused_while_services_exist(home):
    store = open_store(home)
    store.insert_service(_record(store))
    with pytest.raises(Conflict, match="cache"):
        store.delete_environment("default", "production")
    store.delete_environment("default", "staging")
    with pytest.raises(NotFound):
        store.get_environment("default", "staging")


def test_not_a_database_is_a_state_error(home):
    (home / "state.db").write_text("this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a paas state database"):
        open_store(home)


def test_newer_schema_is_refused(home):
    store = open_store(home)
    store.connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="newer paas"):
        open_store(home)


def test_key_is_created_once_with_mode_0600(home):
    store = open_store(home)
    vault = Vault(store, home)
    token = vault.encrypt({"password": "s3cret"})
    key_file = home / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    record = _record(store)
    record.secret = token
    assert Vault(store, home).credentials(record) == {"password": "s3cret"}
    assert b"s3cret" not in (home / "state.db").read_bytes()


def test_missing_key_with_secrets_is_an_error_naming_the_file(home):
    store = open_store(home)
    store.insert_service(_record(store))
    Vault(store, home).encrypt({"password": "x"})
    (home / "master.key").unlink()
    with pytest.raises(SecretsError, match=str(home / "master.key")):
        Vault(store, home).encrypt({"password": "y"})
    assert not (home / "master.key").exists(), "a new key must never be generated over existing secrets"


def test_wrong_key_is_detected(home, monkeypatch):
    from cryptography.fernet import Fernet

    store = open_store(home)
    Vault(store, home).encrypt({"password": "x"})
    monkeypatch.setenv("PAAS_MASTER_KEY", Fernet.generate_key().decode())
    with pytest.raises(SecretsError, match="does not match"):
        Vault(store, home).box()


def test_corrupted_token_is_reported(home):
    store = open_store(home)
    vault = Vault(store, home)
    record = _record(store)
    record.secret = vault.encrypt({"password": "x"})[:-8] + "AAAAAAAA"
    with pytest.raises(SecretsError, match="corrupted"):
        vault.credentials(record)


def test_invalid_key_file_content(home):
    open_store(home)
    (home / "master.key").write_text("not-a-key\n")
    with pytest.raises(SecretsError, match="not a valid Fernet key"):
        Vault(open_store(home), home).box()


def test_concurrent_writers_wait_instead_of_failing(home):
    """A second connection holding a write lock makes the first wait (busy timeout), not fail."""
    import threading
    import time

    store = open_store(home)
    blocker = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")

    def release():
        time.sleep(0.5)
        blocker.execute("COMMIT")

    threading.Thread(target=release).start()
    started = time.monotonic()
    store.audit("test", "default", "production", "cache")
    assert time.monotonic() - started >= 0.4
    assert store.list_audit()[-1].action == "test"
