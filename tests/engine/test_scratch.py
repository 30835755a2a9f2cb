"""A real backup run on the real engine removes the scratch folder a killed run left behind
(the scratch folder itself: tests/unit/test_scratch.py)."""

from __future__ import annotations

import subprocess

from paas_svc.state.scratch import SCRATCH_DIR_NAME
from tests.support.cli import PAAS_BIN
from tests.support.scratch import dead_pid, leave_leftover
from tests.support.services import add


def test_a_real_backup_run_removes_a_killed_runs_leftover(paas, engine, isolated_home):
    add(paas, "cache", "redis-7")
    stale = leave_leftover(isolated_home, f"{dead_pid()}-4242")
    backed_up = subprocess.run([PAAS_BIN, "svc", "backup", "cache", "-o", "-"], capture_output=True, timeout=120)
    assert backed_up.returncode == 0, backed_up.stderr.decode()
    assert not stale.exists()
    assert [p.name for p in (isolated_home / SCRATCH_DIR_NAME).iterdir()] == [], "the backup's own folder holds nothing now"
