"""Plaintext temp copies live in PAAS_HOME/tmp/<pid>-<start>/ (0700, files 0600) while an
operation runs, and the next run removes what a killed process left."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys

from paas_svc.engine.sdk import ExecResult
from paas_svc.state.scratch import SCRATCH_DIR_NAME, process_scratch_dir, process_tag
from tests.fakes import RecordingEngine, credentials_for, make_service
from tests.support.scratch import dead_pid, leave_leftover


def test_scratch_dir_is_private_and_per_process(isolated_home):
    isolated_home.mkdir(mode=0o700)
    mine = process_scratch_dir(isolated_home)
    assert mine == isolated_home / "tmp" / process_tag(os.getpid())
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700 and stat.S_IMODE(mine.parent.stat().st_mode) == 0o700
    assert process_scratch_dir(isolated_home) == mine, "the same folder for the whole process"


def test_leftovers_of_dead_processes_are_removed_and_live_ones_kept(isolated_home):
    isolated_home.mkdir(mode=0o700)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = leave_leftover(isolated_home, f"{dead_pid()}-123")
        reused = leave_leftover(isolated_home, f"{live.pid}-1")  # that pid now runs another process
        running = leave_leftover(isolated_home, process_tag(live.pid))
        unrelated = leave_leftover(isolated_home, "notes")
        process_scratch_dir(isolated_home)
        assert not dead.exists() and not reused.exists()
        assert running.exists() and unrelated.exists()
    finally:
        live.kill()
        live.wait()
    process_scratch_dir(isolated_home)
    assert not running.exists()


def test_a_streamed_backup_stages_in_the_private_folder(isolated_home):
    """During the backup its staging copy is a 0600 file in a 0700 folder under PAAS_HOME/tmp;
    afterwards nothing is left, and a dead process's leftover is gone."""
    from paas_svc.secrets.vault import Vault
    from paas_svc.state.home import ensure_home
    from paas_svc.state.store import open_store
    from paas_svc.usecases.data import DataOps
    from paas_svc.usecases.lifecycle import ServiceManager

    home = ensure_home(isolated_home)
    stale = leave_leftover(home, f"{dead_pid()}-99")
    store = open_store(home)
    seen = []

    class Watching(RecordingEngine):
        def exec_stream(self, name, command, sink, environment=None):
            for folder, _, files in os.walk(home / SCRATCH_DIR_NAME):
                seen.append((folder, stat.S_IMODE(os.stat(folder).st_mode),
                             [(f, stat.S_IMODE(os.stat(os.path.join(folder, f)).st_mode)) for f in files]))
            return super().exec_stream(name, command, sink, environment)

    engine = Watching(exec_reply=lambda command: ExecResult(0, b"PGDMPdata", b""))
    manager = ServiceManager(store, Vault(store, home), home, lambda: engine)
    service = make_service("postgres-16", slug="db")
    service.env_id = store.get_environment("default", "production").id
    service.project = "default"
    service.secret = manager.vault.encrypt(credentials_for("postgres-16"))
    store.insert_service(service)
    try:
        out = io.BytesIO()
        DataOps(manager).backup_to_stream(service, out)
    finally:
        store.close()
    assert out.getvalue().endswith(b"PGDMPdata")
    assert not stale.exists()
    mine = str(home / SCRATCH_DIR_NAME / process_tag(os.getpid()))
    staged = [(folder, mode, files) for folder, mode, files in seen if files]
    assert staged and all(folder == mine and mode == 0o700 for folder, mode, _ in staged), seen
    assert all(file_mode == 0o600 for _, _, files in staged for _, file_mode in files), seen
    assert os.listdir(mine) == [], "the staging file is removed at the end"
