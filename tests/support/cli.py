"""Running the CLI: in-process through the `paas` entry point, or as the installed script in a
child process (for concurrency, signals, exit codes, a terminal)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PAAS_BIN = str(Path(sys.executable).with_name("paas"))


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"exit={self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_paas(*args: str) -> Result:
    """Run the CLI in-process through the same entry point as the `paas` script."""
    from paas_svc.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return Result(code, out.getvalue(), err.getvalue())


def run_paas_process(*args: str, env: dict | None = None, timeout: float = 180, input: str | None = None) -> Result:
    """Run the installed `paas` script in a child process (for concurrency, signals, exit codes)."""
    completed = subprocess.run([PAAS_BIN, *args], capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, **(env or {})}, input=input)
    return Result(completed.returncode, completed.stdout, completed.stderr)


def in_a_terminal(args: list[str], env: dict) -> tuple[int, bytes]:
    """Run paas with stdout on a pseudo-terminal; its output is drained while it runs."""
    import pty
    import threading

    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal side closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        completed = subprocess.run([PAAS_BIN, *args], stdout=terminal, stderr=subprocess.PIPE, timeout=60,
                                   env={**os.environ, **env})
    finally:
        os.close(terminal)
    reader.join(timeout=30)
    os.close(controller)
    return completed.returncode, b"".join(chunks)


def ok(result: Result) -> Result:
    """The result of a command that must succeed; its whole output when it did not."""
    assert result.exit_code == 0, result.output
    return result
