"""Per-service advisory locks: a crashed `paas svc add` releases its lock when the process dies,
so a later add can tell "being provisioned right now" from "left half-done by a crash"."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def service_lock(home: Path, env_id: int, slug: str) -> Iterator[bool]:
    """Yields True when this process holds the lock, False when another process does."""
    folder = home / "locks"
    folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / f"{env_id}-{slug}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
