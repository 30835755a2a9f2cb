"""Shared helpers for the bench scripts (stdlib only).

Every script alternates its commands run by run (A B A B ...) and reports medians and
ratios against a baseline measured in the same run, so load on a shared machine hits
both sides alike instead of faking a result.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
PAAS = str(ROOT / ".venv" / "bin" / "paas")
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
RESULTS = ROOT / "bench" / "results"
# Users run installed packages with compiled bytecode. With PYTHONDONTWRITEBYTECODE=1 (set
# in some shells/CI) an editable install recompiles every paas_svc module on every call
# (~20 ms); the bench keeps bytecode in bench/results/pycache instead, outside the package.
PYCACHE = RESULTS / "pycache"
IMAGE = "paas-test/redis:7"
DOCKER_SOCKET = "/var/run/docker.sock"
REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r$", re.M)


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Untimed helper run (setup/cleanup), output captured."""
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")
    return result


def timed(cmd: list[str], env: dict | None = None) -> float:
    """Wall time of one run of `cmd`, output discarded; a failing command aborts the bench."""
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} exited {result.returncode}")
    return elapsed


def alternate(commands: dict[str, list[str] | tuple[list[str], dict]], rounds: int, env: dict | None = None,
              warmup: int = 2) -> dict[str, list[float]]:
    """Run every command once per round, in turn (A B C A B C ...); warm-up rounds are not
    recorded. A command is an argv (run with `env`) or an (argv, env) pair."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for round_index in range(warmup + rounds):
        for name, cmd in commands.items():
            cmd, cmd_env = cmd if isinstance(cmd, tuple) else (cmd, env)
            elapsed = timed(cmd, cmd_env)
            if round_index >= warmup:
                samples[name].append(elapsed)
    return samples


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(header: list[str], rows: list[list]) -> None:
    """A markdown table (pasteable into bench/README.md)."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


@contextlib.contextmanager
def throwaway_home():
    """A fresh PAAS_HOME; on exit, remove every container and volume of its profile."""
    home = tempfile.mkdtemp(prefix="paas-bench-")
    env = {**os.environ, "PAAS_HOME": home, "NO_COLOR": "1", "PYTHONPYCACHEPREFIX": str(PYCACHE),
           # a schedule, TLS service or archived service installs the host timer: keep it in the
           # throwaway home, never in the machine's /etc/cron.d (it would outlive the bench)
           "PAAS_SCHEDULER": "cron", "PAAS_CRON_DIR": os.path.join(home, "cron.d")}
    for name in ("PAAS_PROJECT", "PAAS_ENV", "DOCKER_HOST", "PAAS_ENGINE_CLIENT", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    try:
        yield env
    finally:
        cleanup_profile(home)
        shutil.rmtree(home, ignore_errors=True)


def profile_id(home: str) -> str | None:
    db = Path(home) / "state.db"
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db)) as connection:
        row = connection.execute("SELECT value FROM meta WHERE key='profile_id'").fetchone()
    return row[0] if row else None


def cleanup_profile(home: str) -> None:
    pid = profile_id(home)
    if not pid:
        return
    label = f"label=paas.profile={pid}"
    containers = run([DOCKER, "ps", "-aq", "--filter", label], check=False).stdout.split()
    if containers:
        run([DOCKER, "rm", "-f", *containers], check=False)
    volumes = run([DOCKER, "volume", "ls", "-q", "--filter", label], check=False).stdout.split()
    if volumes:
        run([DOCKER, "volume", "rm", "-f", *volumes], check=False)


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    docker_version = run([DOCKER, "version", "--format", "{{.Server.Version}}"], check=False).stdout.strip()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": run([PY, "-c", "import sys; print(sys.version.split()[0])"]).stdout.strip(),
        "docker": docker_version,
        "git_head": run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=False).stdout.strip(),
        "package_files_changed_since_head": len(run(["git", "-C", str(ROOT), "status", "--porcelain", "paas_svc"],
                                                    check=False).stdout.splitlines()),
        "loadavg_1m": os.getloadavg()[0],
    }


AT_START = machine()  # the code and machine measured, as they were when the script started


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": AT_START, **payload}, indent=2) + "\n")
    print(f"\nresults: {path.relative_to(ROOT)}")
    return path


class CountingProxy:
    """Forwards a unix socket to dockerd and records every HTTP request line sent through it."""

    def __init__(self, path: str):
        self.requests: list[str] = []
        self._threads: list[threading.Thread] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, seen: bytearray | None = None) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if seen is not None:
                    seen += chunk
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def _handle(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(DOCKER_SOCKET)
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        sent = bytearray()
        self._pump(client, upstream, sent)
        back.join(10)
        client.close()
        upstream.close()
        self.requests += [f"{m.group(1).decode()} {unquote(m.group(2).decode())}" for m in REQUEST_LINE.finditer(bytes(sent))]

    def take(self) -> list[str]:
        """The requests seen since the last call (waits for open connections to finish)."""
        for thread in self._threads:
            thread.join(10)
        self._threads.clear()
        seen, self.requests = self.requests, []
        return seen

    def close(self) -> None:
        self._server.close()
