"""Watch every process's command line on the host while a test runs: through /proc, as
`ps -eo args` reads it, but fast enough to see a shell that lives a few milliseconds.
Containers' processes are host processes in other namespaces, so they are seen too."""

from __future__ import annotations

import os
import threading
import time


class ArgvWatcher:
    """Every distinct command line of every process on the host while it runs."""

    def __init__(self):
        self.lines: set[str] = set()
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        text = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    continue  # gone meanwhile
                if text:
                    self.lines.add(text)
            self.rounds += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def leaked(self, secret: str) -> list[str]:
        return sorted(line for line in list(self.lines) if secret in line)

    def wait_for(self, fragment: str, timeout: float = 60) -> str:
        """The first command line seen holding `fragment` (waits for it: a deadline, not a timing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if fragment in line]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no process with {fragment!r} seen; saw {sorted(self.lines)[:50]}")
