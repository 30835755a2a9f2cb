"""Advisory locks (flock). The kernel releases them when a process dies, so a crashed
`paas svc add` never leaves a lock behind, and a later add can tell "being provisioned
right now" from "left half-done by a crash"."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


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


@contextmanager
def service_lock(home: Path, env_id: int, slug: str) -> Iterator[bool]:
    """Yields True when this process holds the lock, False when another process does."""
    fd = _open_lock(_lock_file(home, env_id, slug))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def add_in_progress(home: Path, env_id: int, slug: str) -> bool:
    """True while some process holds the service's lock (an add or repair is running)."""
    path = home / "locks" / f"{env_id}-{slug}.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextmanager
def blocking_lock(path: Path) -> Iterator[None]:
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def host_lock_path(name: str) -> Path:
    """A lock shared by every profile on this host (e.g. creating the one paas-apps network)."""
    import tempfile  # ~15 ms of imports: only the provisioning path needs it

    return Path(tempfile.gettempdir()) / f"paas-svc-{name}-{os.getuid()}.lock"
