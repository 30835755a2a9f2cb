"""What a killed paas process leaves in PAAS_HOME/tmp/: a scratch folder under a dead pid."""

from __future__ import annotations

import subprocess
import sys

from paas_svc.state.scratch import SCRATCH_DIR_NAME
from tests.fakes import PASSWORD


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leave_leftover(home, tag: str):
    folder = home / SCRATCH_DIR_NAME / tag
    folder.mkdir(parents=True, mode=0o700)
    (folder / "stream-0123").write_bytes(b"plaintext copy of " + PASSWORD.encode())
    return folder
