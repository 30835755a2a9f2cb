"""Inputs a user or a script can get wrong, where only the real engine reaches the failure.

Each case asserts what tests/unit/test_bad_input.py asserts (the exit code, one clear message
on stderr, no traceback, nothing on stdout, no change to the state database) and also that no
container, volume or network was created.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.support.backup_files import HOSTILE_ARCHIVES, header_for
from tests.support.bad_input import ADD, Case, assert_clean_failure, case, state_dump
from tests.support.cli import PAAS_BIN
from tests.support.engine import profile_id
from tests.support.images import REDIS_IMAGE, STANDIN_IMAGE

CASES = [
    case("add-port-out-of-range", (*ADD, "cache", "--template", "redis-7", "--port", "70000", "--image", REDIS_IMAGE), 2, "--port"),
    case("add-image-not-pullable", (*ADD, "cache", "--template", "redis-7", "--image", "127.0.0.1:1/none/such:1"), 6,
         "Could not pull image"),
]


def _engine_snapshot(client, home: Path):
    label = f"paas.profile={profile_id(home)}"
    return (sorted(c.name for c in client.containers.list(all=True, filters={"label": label})),
            sorted(v.name for v in client.volumes.list(filters={"label": label})),
            # this profile's own networks: the other tests of the run (other workers, the multinode tier
            # beside this one) make and remove networks of their own meanwhile
            sorted(n.id for n in client.networks.list(filters={"label": label})))


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, paas, engine, isolated_home, monkeypatch):
    assert paas("svc", "list").exit_code == 0  # the state exists before the bad command
    state_before = state_dump(isolated_home)
    engine_before = _engine_snapshot(engine, isolated_home)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    result = paas(*case.args)
    assert_clean_failure(result, case)
    assert state_dump(isolated_home) == state_before, "the state must not change"
    assert _engine_snapshot(engine, isolated_home) == engine_before, "nothing may be created on the engine"


def test_duplicate_slug(paas, engine, isolated_home):
    assert paas(*ADD, "cache", "--template", "redis-7", "--image", REDIS_IMAGE).exit_code == 0
    state_before, engine_before = state_dump(isolated_home), _engine_snapshot(engine, isolated_home)
    result = paas(*ADD, "cache", "--template", "redis-7", "--image", REDIS_IMAGE)
    assert_clean_failure(result, Case("dup", (), 4, "already exists"))
    assert state_dump(isolated_home) == state_before
    assert _engine_snapshot(engine, isolated_home) == engine_before


def test_host_port_already_taken(paas, engine, isolated_home):
    assert paas("svc", "list").exit_code == 0
    state_before, engine_before = state_dump(isolated_home), _engine_snapshot(engine, isolated_home)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = paas(*ADD, "cache", "--template", "redis-7", "--image", REDIS_IMAGE, "--port", str(port))
    assert_clean_failure(result, Case("port", (), 4, f"Host port {port}"))  # a conflict, as in doctor and for a paas-held port
    assert state_dump(isolated_home) == state_before
    assert _engine_snapshot(engine, isolated_home) == engine_before


def test_interrupted_add_is_reported_not_traced(paas_process, engine, isolated_home):
    """Ctrl-C: exit 130, one line, and the service is left Failed for `svc add`/`repair` to finish
    (the full recovery is in tests/engine/test_trust.py)."""
    import signal
    import time

    process = subprocess.Popen([PAAS_BIN, *ADD, "docs", "--template", "mongodb-7", "--image", REDIS_IMAGE, "--timeout", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # interrupt while it waits for readiness
        if profile_id(isolated_home) and engine.containers.list(filters={"label": f"paas.profile={profile_id(isolated_home)}"}):
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stdout == ""
    assert stderr.strip().splitlines()[-1] == "interrupted"


# -- issue 9: hostile backup files are refused before anything changes ----------------------------

@pytest.mark.parametrize("field, value", [("slug", "cache\x1b[2J\x1b[31m"), ("project", "shop\nerror: all data deleted"),
                                          ("created_at", "2025\r"), ("tool_version", "x" * 5000)],
                         ids=["escape-in-slug", "newline-in-project", "cr-in-date", "long-tool-version"])
def test_restore_refuses_a_header_with_escapes_or_newlines(paas, engine, isolated_home, tmp_path, field, value):
    import json

    from paas_svc.kinds.strategy import RESERVED_HEADER_BYTES, encode_header

    assert paas(*ADD, "cache", "--template", "redis-7", "--image", REDIS_IMAGE).exit_code == 0
    payload = b"REDIS0011" + b"\xff" * 32
    line = encode_header(header_for("redis-7", payload), pad_to=RESERVED_HEADER_BYTES)
    document = {**json.loads(line), field: value}
    path = tmp_path / "hostile.rdb"
    path.write_bytes(json.dumps(document).encode() + b"\n" + payload)
    state_before, engine_before = state_dump(isolated_home), _engine_snapshot(engine, isolated_home)
    result = paas("svc", "restore", "cache", str(path), "--yes")
    assert_clean_failure(result, Case("header", (), 2, f"invalid backup header: its {field}"))
    assert value not in result.stderr and "\x1b" not in result.stderr and "\r" not in result.stderr
    assert state_dump(isolated_home) == state_before
    assert _engine_snapshot(engine, isolated_home) == engine_before


def test_restore_refuses_a_hostile_volume_archive(paas, engine, isolated_home, tmp_path):
    """One case of the matrix in tests/engine/test_hostile_archives.py, here with the common checks."""
    from paas_svc.kinds.strategy import RESERVED_HEADER_BYTES, encode_header

    assert paas(*ADD, "mail", "--template", "mailpit", "--image", STANDIN_IMAGE).exit_code == 0
    payload, _ = HOSTILE_ARCHIVES["symlink-to-root-then-through-it"]
    path = tmp_path / "mail.tar"
    path.write_bytes(encode_header(header_for("mailpit", payload), pad_to=RESERVED_HEADER_BYTES) + payload)
    state_before, engine_before = state_dump(isolated_home), _engine_snapshot(engine, isolated_home)
    result = paas("svc", "restore", "mail", str(path), "--yes")
    assert_clean_failure(result, Case("archive", (), 2, "a symlink 'data/x' -> '/', which points outside the volume"))
    assert state_dump(isolated_home) == state_before
    assert _engine_snapshot(engine, isolated_home) == engine_before
