"""Services come back after the Docker engine itself restarts (restart=unless-stopped).

This stops and restarts dockerd, which disturbs anything else using the engine, so it
runs last (marker `engine_restart`: tests/conftest.py puts it after every other test) and
only where PAAS_ALLOW_ENGINE_RESTART=1 (.ci/run sets it).
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.support.images import REDIS_IMAGE

pytestmark = [pytest.mark.engine_restart,
              pytest.mark.skipif(not os.environ.get("PAAS_ALLOW_ENGINE_RESTART"),
                                 reason="restarts dockerd; set PAAS_ALLOW_ENGINE_RESTART=1 (CI does)")]


def _pid_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:  # gone meanwhile
        return None


def _dockerd_pid() -> int:
    # Engines of the multi-node tier's node containers are dockerd processes too, in their own
    # PID namespaces: only the one in ours is the host's engine.
    ours = os.readlink("/proc/self/ns/pid")
    output = [pid for pid in subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
              if _pid_namespace(pid) == ours]
    assert len(output) == 1, f"expected one dockerd in this PID namespace, found {output}"
    return int(output[0])


def _wait(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - the engine is coming back
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out after {seconds}s waiting for {what}")


def test_services_are_ready_again_after_dockerd_restarts(paas, engine, tmp_path):
    assert paas("svc", "add", "cache", "--template", "redis-7", "--image", REDIS_IMAGE).exit_code == 0
    url = paas("svc", "dsn", "cache").stdout.strip()
    redis.Redis.from_url(url).set("survives", "yes")

    pid = _dockerd_pid()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    os.kill(pid, signal.SIGTERM)
    _wait(lambda: not Path(f"/proc/{pid}").exists(), 60, "dockerd to stop")
    log = open(tmp_path / "dockerd.log", "wb")
    subprocess.Popen([a.decode() for a in argv], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    _wait(lambda: engine.ping(), 60, "dockerd to answer again")

    def ready():
        result = paas("svc", "list", "--json")
        return result.exit_code == 0 and json.loads(result.stdout)[0]["status"] == "Ready"

    _wait(ready, 60, "the service to be Ready again")
    _wait(lambda: redis.Redis.from_url(url).ping(), 30, "redis to answer")
    assert redis.Redis.from_url(url).get("survives") == b"yes"
