"""Private scratch space for plaintext copies of service data while a backup, restore or clone
runs (a streamed backup's staging file, spooled archives, a clone's copy).

Each process gets PAAS_HOME/tmp/<pid>-<start time>/ (mode 0700; files in it 0600). A process
killed mid-operation cannot clean up, so every run first removes the folders of processes that
no longer exist. The start time tells a reused pid apart from the process that made the folder.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import stat
from pathlib import Path

from paas_svc.errors import StateError

SCRATCH_DIR_NAME = "tmp"
_TAG = re.compile(r"^(\d+)-(\w+)$")


def process_scratch_dir(home: Path) -> Path:
    """This process's scratch folder, made (0700) after the leftovers of dead processes are
    removed; it goes when the process exits normally."""
    base = _private_dir(Path(home) / SCRATCH_DIR_NAME)
    remove_stale(base)
    mine = _private_dir(base / process_tag(os.getpid()))
    if mine not in _made:
        _made.add(mine)
        atexit.register(shutil.rmtree, mine, ignore_errors=True)
    return mine


_made: set[Path] = set()


def process_tag(pid: int) -> str:
    return f"{pid}-{_start_time(pid) or 'x'}"


def remove_stale(base: Path) -> list[Path]:
    """Remove the scratch folders whose process is gone; returns what was removed."""
    removed = []
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = _TAG.match(entry.name)
        if match is None or _alive(int(match.group(1)), match.group(2)):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue  # another paas process removed it first
        removed.append(Path(entry.path))
    return removed


def _alive(pid: int, start: str) -> bool:
    current = _start_time(pid)
    if current is not None or os.path.exists("/proc/self/stat"):
        return current == start  # None: no such process (or a new one in its pid with another start)
    try:  # no /proc: the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()  # the command name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 and fields[19].isdigit() else None


def _private_dir(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise StateError(f"{path} is not a folder (paas keeps its temporary files there).",
                             hint="Move it away and run the command again.")
        if info.st_uid != os.getuid():
            raise StateError(f"{path} belongs to another user; paas will not keep temporary copies of data in it.",
                             hint="Remove it (paas makes it again) and run the command again.")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(path, 0o700)
    except OSError as error:
        raise StateError(f"Cannot use {path} for temporary files: {error.strerror}.") from None
    return path
