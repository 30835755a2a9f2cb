"""A real `paas serve` in a child process on 127.0.0.1, for the API and dashboard tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from tests.support.cli import PAAS_BIN, run_paas_process
from tests.support.images import REDIS_IMAGE

START_DEADLINE_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_on_a_thread(server):
    """An `api.app.http_server` (uvicorn) served on a thread of this process while the block runs:
    started (within 10 s) before it, told to exit and joined after it."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)


class Server:
    def __init__(self, home: Path, *args: str, env: dict | None = None, port: int | None = None):
        self.home = home
        self.port = port or free_port()
        self.args = args
        self.env = {**os.environ, "PAAS_HOME": str(home), **(env or {})}
        self.log = home.parent / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def scope(self, env: str = "production", project: str = "default", org: str = "default") -> str:
        return f"{self.url}/api/orgs/{org}/projects/{project}/envs/{env}"

    def start(self, wait: bool = True) -> "Server":
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [PAAS_BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--image", f"redis-7={REDIS_IMAGE}", *self.args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"paas serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"paas serve did not listen within {START_DEADLINE_SECONDS}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def token(self, name: str, role: str) -> str:
        result = run_paas_process("token", "create", name, "--role", role, env={"PAAS_HOME": str(self.home)})
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    def paas(self, *args: str):
        return run_paas_process(*args, env={"PAAS_HOME": str(self.home)})


def wait_for_status(client, url: str, wanted: set[str], deadline_seconds: float = 90) -> dict:
    """Poll a service until its status is one of `wanted` (a deadline, not a timed assertion)."""
    deadline = time.monotonic() + deadline_seconds
    seen = []
    while time.monotonic() < deadline:
        response = client.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in wanted:
            body["_seen"] = seen
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} never reached {wanted}; statuses seen: {seen}")
