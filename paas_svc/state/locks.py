"""Advisory locks. The kernel releases them when a process dies, so a crashed `paas`
command never leaves a lock behind, and a later command can tell "being worked on right
now" from "left half-done by a crash".

Service locks are open-file-description (OFD) record locks on Linux: unlike flock, they
can be TESTED without being taken (F_OFD_GETLK), so `svc list` can ask "is an add or a
restore running?" without ever making that add or restore fail. Like flock, an OFD lock
belongs to its open file (two opens in one process exclude each other) and is never
dropped when some other descriptor of the same file is closed.

Within one thread a service lock is re-entrant (a purge takes the lock, then its final
backup asks for it again). Other threads of the same process (`paas serve` provisions in
threads) are excluded like other processes.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import sys
import time
from _thread import get_ident
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from paas_svc.errors import Conflict, StateError

# struct flock on Linux (x86_64, aarch64): short l_type, short l_whence, off_t l_start,
# off_t l_len, pid_t l_pid, padded to 32 bytes.
_FLOCK = "hhqqi4x"
_F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
_USE_OFD = sys.platform.startswith("linux")

HOST_LOCK_TIMEOUT_SECONDS = 60.0
RUNTIME_DIR_NAME = "paas-svc"

_held: dict[tuple[str, int], int] = {}  # (lock file, thread) -> nested holders in this process


def _lock_file(home: Path, env_id: int, slug: str) -> Path:
    folder = home / "locks"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as error:  # a dangling or looping link, or a file, where the folder belongs
        raise _unusable(folder, error) from None
    return folder / f"{env_id}-{slug}.lock"


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise _unusable(path, error) from None


def _unusable(path: Path, error: OSError):
    from paas_svc.errors import StateError

    return StateError(f"Cannot use the lock {path}: {error.strerror or error}.",
                      hint=f"Move {path} aside; paas makes it again.")


def _try_lock(fd: int) -> bool:
    if _USE_OFD:
        try:
            fcntl.fcntl(fd, _F_OFD_SETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        except OSError as error:
            if error.errno in (11, 13):  # EAGAIN, EACCES: held by another open file
                return False
            raise
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_locked(fd: int) -> bool:
    """Whether another open file holds the lock; takes nothing (F_OFD_GETLK)."""
    if _USE_OFD:
        answer = fcntl.fcntl(fd, _F_OFD_GETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK
    try:  # other platforms: flock cannot be tested without taking it (a short race remains)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _write_holder(fd: int, purpose: str) -> None:
    """Who holds the lock, for the "busy" message of whoever finds it taken."""
    note = f"pid={os.getpid()} {purpose}".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, note, 0)


def lock_holder(home: Path, env_id: int, slug: str) -> str | None:
    """The note the current holder left ("pid=123 restore"), or None."""
    try:
        text = (home / "locks" / f"{env_id}-{slug}.lock").read_text(errors="replace").strip()
    except OSError:
        return None
    return text if text.isprintable() and text.startswith("pid=") and len(text) < 200 else None


@contextmanager
def service_lock(home: Path, env_id: int, slug: str, purpose: str = "working on it") -> Iterator[bool]:
    """Yields True when this process holds the lock, False when another process does."""
    path = _lock_file(home, env_id, slug)
    key = (str(path), get_ident())
    if key in _held:  # this process holds it already (an outer step of the same command)
        _held[key] += 1
        try:
            yield True
        finally:
            _held[key] -= 1
        return
    fd = _open_lock(path)
    try:
        if not _try_lock(fd):
            yield False
            return
        _write_holder(fd, purpose)
        _held[key] = 1
        try:
            yield True
        finally:
            del _held[key]
    finally:
        os.close(fd)


def service_lock_held(home: Path, env_id: int, slug: str) -> bool:
    """True while some process holds the service's lock (an add, repair, restore... is running).
    Never takes the lock, so it cannot make that command fail."""
    path = home / "locks" / f"{env_id}-{slug}.lock"
    if any(held_path == str(path) for held_path, _thread in _held):
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        if _USE_OFD:
            return _is_locked(fd)
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDWR)  # flock platforms: needs a lock attempt
    try:
        return _is_locked(fd)
    finally:
        os.close(fd)


def busy_error(home: Path, env_id: int, where: str, slug: str, env: str) -> Conflict:
    """The "busy" error (exit 4) naming what holds the lock when it is known."""
    holder = lock_holder(home, env_id, slug)
    by = f" ({holder.replace('pid=', 'pid ', 1)})" if holder else ""
    return Conflict(f"busy: another paas process is working on {where} right now{by}.",
                    hint=f"Try again when it has finished; `paas svc list --env {env}` shows what it is doing.")


@contextmanager
def blocking_lock(path: Path, timeout: float = HOST_LOCK_TIMEOUT_SECONDS, what: str | None = None) -> Iterator[None]:
    """An exclusive flock on `path`, waited for at most `timeout` seconds (then a Conflict)."""
    fd = _open_lock(path)
    try:
        deadline = time.monotonic() + timeout
        interval = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Conflict(f"Waited {timeout:g}s for {what or path} (lock file {path}); another paas process still holds it.",
                                   hint="Try again when the other paas command has finished; a hung one can be found with `fuser` on the lock file.") from None
                time.sleep(min(interval, remaining))
                interval = min(interval * 1.5, 0.2)
        yield
    finally:
        os.close(fd)


def runtime_dir() -> Path:
    """A folder only this user can write, shared by all of this user's paas homes:
    $XDG_RUNTIME_DIR/paas-svc when the session has one, else ~/.cache/paas-svc
    ($XDG_CACHE_HOME honoured). Never a predictable name in a world-writable folder."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not _private_dir(Path(base)):
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / RUNTIME_DIR_NAME
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as error:
        raise StateError(f"Cannot create the lock folder {folder}: {error.strerror}.",
                         hint="Set XDG_RUNTIME_DIR or XDG_CACHE_HOME to a folder you own.") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise StateError(f"Refusing to use {folder} for paas locks: it is not a folder owned by you.",
                         hint="Remove it (it is not paas's), or set XDG_CACHE_HOME to a folder you own.")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(folder, 0o700)  # ours (checked above): make it private
    return folder


def _private_dir(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not stat.S_IMODE(info.st_mode) & 0o022


def host_lock_path(name: str) -> Path:
    """A lock shared by every profile of this user (e.g. creating the one paas-apps network)."""
    return runtime_dir() / f"{name}.lock"
