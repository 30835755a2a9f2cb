"""Waiting for something the engine does in its own time (a Swarm task placed, a node seen down)."""

from __future__ import annotations

import time

SETTLE_SECONDS = 180  # node-down detection and task scheduling on vfs nodes under load


def eventually(check, what: str, timeout: float = SETTLE_SECONDS):
    """Poll `check` (a growing interval) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    interval = 0.5
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(interval)
        interval = min(interval * 1.5, 5)
