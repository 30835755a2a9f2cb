"""Crash safety without Docker: the operation record, the statuses it shows, the refusals,
a failed MongoDB restore, the lock probe that never steals a lock, the host-wide lock's
folder and timeout. The kill tests on the real engine are in tests/engine/test_crash.py."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from paas_svc.engine.sdk import ExecResult
from paas_svc.errors import Conflict, StateError
from paas_svc.kinds.strategy import BackupFailed
from paas_svc.state.models import PURGING, READY, RESTORING, UPGRADING
from tests.fakes import RecordingEngine, credentials_for, make_service
from tests.support.backup_files import write_backup
from tests.support.paths import ROOT


@pytest.fixture
def manager(isolated_home):
    from paas_svc.secrets.vault import Vault
    from paas_svc.state.home import ensure_home
    from paas_svc.state.store import open_store
    from paas_svc.usecases.lifecycle import ServiceManager

    home = ensure_home(isolated_home)
    store = open_store(home)
    engine = RecordingEngine()
    manager = ServiceManager(store, Vault(store, home), home, lambda: engine)
    manager.fake = engine
    yield manager
    store.close()


def stored_service(manager, template_key: str, slug: str):
    service = make_service(template_key, slug=slug)
    service.env_id = manager.store.get_environment("default", "production").id
    service.project = "default"
    service.secret = manager.vault.encrypt(credentials_for(template_key))
    manager.store.insert_service(service)
    manager.wait_ready = lambda svc, timeout: manager.fake.calls.append(("wait_ready",))
    return service


# -- the operation record and the statuses it shows ---------------------------------------------

def test_operation_is_recorded_with_the_status_and_forgotten_with_it(manager):
    service = stored_service(manager, "redis-7", "cache")
    store = manager.store
    store.begin_operation(service.id, UPGRADING, safety_backup="/b/pre-upgrade.rdb", old_image="redis:7", new_image="redis:8")
    assert store.get_service_by_id(service.id).status == UPGRADING
    operation = store.get_operation(service.id)
    assert (operation.kind, operation.safety_backup, operation.old_image, operation.new_image) == (
        UPGRADING, "/b/pre-upgrade.rdb", "redis:7", "redis:8")
    store.end_operation(service.id, READY, image="redis:7")
    assert store.get_operation(service.id) is None and store.get_service_by_id(service.id).status == READY


def test_a_purged_service_takes_its_operation_record_with_it(manager):
    service = stored_service(manager, "redis-7", "cache")
    manager.store.begin_operation(service.id, PURGING, safety_backup="/b/final.rdb")
    manager.store.delete_service(service.id)
    assert manager.store.get_operation(service.id) is None
    assert manager.store.connection.execute("SELECT count(*) FROM operations").fetchone()[0] == 0


@pytest.mark.parametrize("stored,held,shown", [
    (RESTORING, True, "Restoring"),
    (RESTORING, False, "Restoring (interrupted)"),
    (UPGRADING, True, "Upgrading"),
    (UPGRADING, False, "Upgrading (interrupted)"),
    (PURGING, False, "Purging (interrupted)"),
])
def test_an_operation_is_shown_whatever_the_container_does(stored, held, shown):
    from paas_svc.engine.status import ContainerState
    from paas_svc.usecases.status import live_status

    service = make_service("redis-7")
    service.status = stored
    running = ContainerState(name=service.container_name, state="running", status="", image=service.image, labels={})
    assert live_status(service, running, held) == shown, "never Ready while the data may be half-written"
    assert live_status(service, None, held) == shown


@pytest.mark.parametrize("action", ["start", "restart"])
def test_start_refuses_an_interrupted_restore_and_names_repair(manager, action):
    service = stored_service(manager, "redis-7", "cache")
    manager.store.begin_operation(service.id, RESTORING, safety_backup="/b/pre-restore.rdb", source="/x.rdb")
    with pytest.raises(Conflict) as caught:
        getattr(manager, action)(service)
    assert "interrupted" in caught.value.message and caught.value.exit_code == 4
    assert "paas svc repair cache --env production" in caught.value.hint
    assert manager.fake.calls == [], "nothing was started"


def test_rm_without_purge_and_backup_refuse_an_interrupted_upgrade(manager, tmp_path):
    from paas_svc.usecases.data import DataOps

    service = stored_service(manager, "redis-7", "cache")
    manager.store.begin_operation(service.id, UPGRADING, safety_backup="/b/x.rdb", old_image="a", new_image="b")
    with pytest.raises(Conflict, match="interrupted"):
        manager.remove(service, purge=False)
    with pytest.raises(Conflict, match="interrupted"):
        DataOps(manager).backup_to_path(service, tmp_path / "x.rdb")
    assert manager.fake.calls == []
    assert manager.store.get_service_by_id(service.id).status == UPGRADING


# -- a failed MongoDB restore never claims "the data is unchanged" ---------------------------

def mongo_replies(fail_restores: int):
    """mongodump gives a gzip archive; the first `fail_restores` mongorestore calls fail."""
    failures = {"left": fail_restores}

    def reply(command):
        tool = next((word for word in command if word in ("mongodump", "mongorestore")), None)
        if tool == "mongodump" and "--version" not in command:
            return ExecResult(0, b"\x1f\x8b mongo archive", b"")
        if tool == "mongorestore":
            if failures["left"] > 0:
                failures["left"] -= 1
                return ExecResult(1, b"", b"Failed: docs.orders: error dropping collection")
            return ExecResult(0, b"", b"")
        return ExecResult(0, b"mongodump version: 100.9.4\n", b"")

    return reply


def test_a_failed_mongodb_restore_puts_the_safety_backup_back(manager, tmp_path):
    from paas_svc.usecases.data import DataOps

    service = stored_service(manager, "mongodb-7", "docs")
    manager.fake.exec_reply = mongo_replies(fail_restores=1)
    incoming = write_backup(tmp_path / "new.mongoarchive", "mongodb-7", b"\x1f\x8b incoming")
    with pytest.raises(BackupFailed) as caught:
        DataOps(manager).restore(service, incoming)
    text = caught.value.message
    assert "unchanged" not in text
    assert "The previous data was put back." in text
    restores = [call for call in manager.fake.calls if call[0] == "exec" and "mongorestore" in call[2]]
    assert len(restores) == 2, "the safety backup was restored after the failed restore"
    put = [content for _, path, content in manager.fake.put]
    assert b"\x1f\x8b mongo archive" in put[1], "the second mongorestore reads the safety backup"
    assert manager.store.get_service_by_id(service.id).status == READY
    assert manager.store.get_operation(service.id) is None


def test_a_failed_mongodb_restore_whose_rollback_fails_says_what_state_and_how_back(manager, tmp_path):
    from paas_svc.usecases.data import DataOps
    from paas_svc.usecases.status import live_status

    service = stored_service(manager, "mongodb-7", "docs")
    manager.fake.exec_reply = mongo_replies(fail_restores=2)
    incoming = write_backup(tmp_path / "new.mongoarchive", "mongodb-7", b"\x1f\x8b incoming")
    with pytest.raises(BackupFailed) as caught:
        DataOps(manager).restore(service, incoming)
    text = caught.value.message
    assert "unchanged" not in text
    assert "not transactional" in text and "partly restored" in text
    assert "paas svc repair docs --env production" in text
    safety = manager.store.get_operation(service.id).safety_backup
    assert safety in text and Path(safety).exists()
    stored = manager.store.get_service_by_id(service.id)
    assert live_status(stored, None, False) == "Restoring (interrupted)"

    # The documented way back: repair puts the safety backup back.
    result = DataOps(manager).repair(stored)
    assert "rolled back" in result.outcome and safety in result.outcome
    assert manager.store.get_service_by_id(service.id).status == READY
    assert manager.store.get_operation(service.id) is None


# -- the lock probe never takes the lock -------------------------------------------------------

PROBE_LOOP = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from paas_svc.state import locks
home = Path(sys.argv[1])
print("ready", flush=True)
end = time.monotonic() + 30
while time.monotonic() < end:
    locks.{probe}(home, 1, "cache")
"""


def test_probing_a_lock_never_makes_a_taker_fail(isolated_home):
    """What `svc list` does for every Provisioning/Restoring row, thousands of times a second,
    while this process takes and releases the lock 1000 times: it must never find it taken.
    (The old probe took the flock for a moment, and a concurrent add then failed.)"""
    from paas_svc.state import locks

    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "locks").mkdir(exist_ok=True)
    probe = "service_lock_held"
    code = PROBE_LOOP.format(root=str(ROOT), probe=probe)
    prober = subprocess.Popen([sys.executable, "-c", code, str(isolated_home)], stdout=subprocess.PIPE, text=True)
    try:
        assert prober.stdout.readline().strip() == "ready"
        failures = 0
        for _ in range(1000):
            with locks.service_lock(isolated_home, 1, "cache", "add") as got:
                failures += not got
        assert failures == 0
    finally:
        prober.kill()
        prober.wait()


def test_the_probe_sees_a_lock_held_by_another_process_and_names_the_holder(isolated_home):
    from paas_svc.state import locks

    isolated_home.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[2]); from paas_svc.state import locks\n"
        "with locks.service_lock(Path(sys.argv[1]), 1, 'cache', 'restore') as got:\n"
        "    print(got, flush=True); time.sleep(60)"), str(isolated_home), str(ROOT)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        assert locks.service_lock_held(isolated_home, 1, "cache")
        with locks.service_lock(isolated_home, 1, "cache") as got:
            assert not got
        error = locks.busy_error(isolated_home, 1, "default/production/cache", "cache", "production")
        assert error.exit_code == 4 and error.message.startswith("busy:")
        assert f"pid {holder.pid} restore" in error.message
    finally:
        holder.kill()
        holder.wait()
    assert not locks.service_lock_held(isolated_home, 1, "cache"), "the kernel released it with the process"


def test_the_service_lock_is_reentrant_within_one_command(isolated_home):
    from paas_svc.state import locks

    isolated_home.mkdir(parents=True, exist_ok=True)
    with locks.service_lock(isolated_home, 1, "cache", "rm --purge") as outer:
        with locks.service_lock(isolated_home, 1, "cache", "final backup") as inner:
            assert outer and inner
        assert locks.service_lock_held(isolated_home, 1, "cache")
    assert not locks.service_lock_held(isolated_home, 1, "cache")


# -- the host-wide lock lives in a private folder and waits with a timeout ---------------------

def test_host_lock_is_in_a_private_folder_not_a_predictable_tmp_name(tmp_path, monkeypatch):
    from paas_svc.state import locks

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = locks.host_lock_path("network")
    assert not str(path).startswith(tempfile.gettempdir() + "/paas-svc-")
    folder = path.parent
    info = os.lstat(folder)
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700


def test_host_lock_prefers_a_private_runtime_dir(tmp_path, monkeypatch):
    from paas_svc.state import locks

    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert locks.host_lock_path("network") == runtime / "paas-svc" / "network.lock"
    runtime.chmod(0o777)  # a shared folder is not a runtime dir: fall back
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert locks.host_lock_path("network") == tmp_path / "cache" / "paas-svc" / "network.lock"


def test_host_lock_refuses_a_folder_that_is_a_symlink(tmp_path, monkeypatch):
    from paas_svc.state import locks

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "paas-svc").symlink_to(elsewhere)
    with pytest.raises(StateError, match="not a folder owned by you"):
        locks.host_lock_path("network")


def test_a_held_host_lock_is_waited_for_then_a_clear_error(tmp_path):
    import fcntl

    from paas_svc.state import locks

    path = tmp_path / "network.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: excludes ours as another process would
    try:
        with pytest.raises(Conflict) as caught:
            with locks.blocking_lock(path, timeout=0.2, what="the host-wide network lock"):
                pass
        assert "Waited 0.2s for the host-wide network lock" in caught.value.message
        assert caught.value.exit_code == 4
    finally:
        os.close(fd)
    with locks.blocking_lock(path, timeout=0.2):
        pass
