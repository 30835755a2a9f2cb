"""`paas serve` under abuse from anyone who can reach its port, no engine needed: refused requests
leave bounded, coalesced audit rows with no terminal escapes in them; slow and half-sent requests
meet read deadlines and a connection cap while real requests are answered; duplicate JSON keys are
refused. A real server (a child process, or uvicorn in a thread with short deadlines), real
sockets, real SQLite."""

from __future__ import annotations

import json
import resource
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import pytest

from tests.support.api_server import Server, free_port, running_on_a_thread
from tests.support.cli import PAAS_BIN, in_a_terminal, run_paas_process

SEGMENT = 15_000  # characters of one URL segment (h11 takes request heads up to 16 KiB)
REFUSED_REQUESTS = 200
BOUNDED_GROWTH_BYTES = 64 * 1024  # was 2.7 MB for these 200 requests: a raw URL per row


def state_bytes(home) -> int:
    return sum((home / name).stat().st_size for name in ("state.db", "state.db-wal") if (home / name).exists())


def checkpoint(home) -> None:
    with sqlite3.connect(home / "state.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_refused_requests_with_huge_segments_grow_the_state_by_a_bounded_amount(tmp_path):
    server = Server(tmp_path / "home").start()
    try:
        scope = f"{server.url}/api/orgs/default/projects"
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{scope}/default/envs/production/services/").status_code == 401  # the state exists now
            checkpoint(server.home)
            before = state_bytes(server.home)
            for number in range(REFUSED_REQUESTS):
                huge = f"%1b[31m{number}" + "x" * SEGMENT
                url = [f"{scope}/{huge}/envs/production/services/",
                       f"{scope}/default/envs/production/services/{huge}/dsn",
                       f"{scope}/default/envs/{huge}/variables"][number % 3]
                headers = {"Authorization": "Bearer paas_" + "y" * 2000} if number % 2 else {}
                assert client.get(url, headers=headers).status_code == 401
        checkpoint(server.home)
        growth = state_bytes(server.home) - before
        print(f"state growth for {REFUSED_REQUESTS} refused requests with {SEGMENT}-character segments: {growth} bytes")
        assert growth < BOUNDED_GROWTH_BYTES, growth

        listed = run_paas_process("audit", "--json", env={"PAAS_HOME": str(server.home)})
        assert listed.exit_code == 0, listed.output
        denied = [entry for entry in json.loads(listed.stdout) if entry["action"] == "api-denied"]
        assert sum(entry["count"] for entry in denied) == REFUSED_REQUESTS + 1
        assert len(denied) <= 4 * 2  # per minute (the run may cross one): missing and unknown token, source 127.0.0.1
        for entry in denied:
            assert entry["project"] in ("default", "?") and entry["slug"] in ("", "?") and entry["env"] in ("production", "?")
            assert "x" * 50 not in entry["detail"] and "\x1b" not in entry["detail"] and "%1b" not in entry["detail"]
            assert "source=127.0.0.1" in entry["detail"] and "/{project}/" in entry["detail"]
        assert "\x1b" not in listed.stdout and "\\u001b" not in listed.stdout

        table = run_paas_process("audit", env={"PAAS_HOME": str(server.home)})
        assert table.exit_code == 0 and "COUNT" in table.stdout.splitlines()[0]
        assert any(str(entry["count"]) in table.stdout for entry in denied)
    finally:
        server.stop()


def test_paas_audit_never_prints_a_control_character(tmp_path):
    """Rows written before refusals were validated (or by any action that quotes a name or engine
    text) may hold escapes: the table escapes them, in a pipe and in a terminal; JSON escapes them."""
    from paas_svc.state.store import open_store

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    store = open_store(home)
    store.audit("api-denied", "\x1b[31mred", "env\x9b2J", "slug\r", "GET /api/\x1b]0;owned\x07 \x1b[2J\x08\x7f")
    store.close()
    env = {"PAAS_HOME": str(home), "NO_COLOR": ""}
    piped = run_paas_process("audit", env=env)
    assert piped.exit_code == 0, piped.output
    assert not [ch for ch in piped.stdout if ord(ch) < 32 and ch not in "\n" or 0x7f <= ord(ch) <= 0x9f], piped.stdout
    assert "\\x1b[31mred" in piped.stdout and "\\x9b2J" in piped.stdout and "\\x1b]0;owned\\x07" in piped.stdout
    code, shown = in_a_terminal(["audit"], {**env, "COLUMNS": "300", "TERM": "xterm"})
    assert code == 0, shown
    text = shown.decode().replace("\x1b[1m", "").replace("\x1b[0m", "")  # our own bold header only
    assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text, repr(text)
    as_json = run_paas_process("audit", "--json", env=env)
    assert not [ch for ch in as_json.stdout if ord(ch) < 32 and ch != "\n" or 0x7f <= ord(ch) <= 0x9f]
    assert json.loads(as_json.stdout)[0]["project"] == "\x1b[31mred"  # the stored text, escaped by JSON only


def test_messages_and_errors_escape_control_characters(capsys):
    from paas_svc.cli.main import _fail
    from paas_svc.cli.output import data, message, print_fields, printable

    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("\x1b[31m\r\x00\x9b\x7f") == "\\x1b[31m\\x0d\\x00\\x9b\\x7f"
    message("engine says \x1b[2J")
    _fail("no such thing \x1b]0;title\x07", "hint \x1b[31m", 4)
    data("line\x1b[1m")
    print_fields([("Name", "x\x1b[5m")])
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in err
    assert "error: no such thing \\x1b]0;title\\x07" in err and "hint: hint \\x1b[31m" in err


# -- slow clients ----------------------------------------------------------------------------------

SLOW_CONNECTIONS = 300
DESCRIPTOR_LIMIT = 256
ATTACK_SECONDS = 8


# The slow clients, in a process of their own (their loop would otherwise hold this process's GIL
# while it times the real requests): SLOW_CONNECTIONS half-sent requests to 127.0.0.1, a header
# line on each now and then, those the server closes opened again; prints how many it opened in
# all, and ends by itself after ATTACK_SECONDS.
SLOW_CLIENTS = """
import resource, socket, sys, time
port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * count), hard))
sockets, opened, announced = [None] * count, 0, False
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    for index, sock in enumerate(sockets):
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                sock.sendall(b"GET /api/orgs/default/projects HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n")
                sockets[index] = sock
                opened += 1
            else:
                sock.sendall(b"X-Slow: 1\\r\\n")
        except OSError:
            if sock is not None:
                sock.close()
            sockets[index] = None
    if not announced:
        print("open", flush=True)
        announced = True
    time.sleep(0.2)
print(opened, flush=True)
"""


@contextmanager
def slow_clients(port: int):
    attacker = subprocess.Popen([sys.executable, "-c", SLOW_CLIENTS, str(port), str(SLOW_CONNECTIONS), str(ATTACK_SECONDS)],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert attacker.stdout.readline().strip() == "open"
        opened = [0]
        yield opened
        opened[0] = int(attacker.stdout.readline() or 0)
    finally:
        if attacker.poll() is None:
            attacker.kill()
        attacker.wait()


def limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTOR_LIMIT, DESCRIPTOR_LIMIT))


def test_300_slow_connections_under_256_descriptors_leave_real_requests_answered_within_a_second(tmp_path):
    server = Server(tmp_path / "home")
    server.home.mkdir(mode=0o700)
    with open(server.log, "wb") as log:  # `paas serve` itself under the limit, from its start
        server.process = subprocess.Popen([PAAS_BIN, "serve", "--listen", f"127.0.0.1:{server.port}"], env=server.env,
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          preexec_fn=limit_descriptors)
    try:
        server.wait_listening()
        token = server.token("alice", "member")
        url = f"{server.url}/api/orgs/default/projects"
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200  # a server in service
        with slow_clients(server.port) as opened:
            timings = []
            for _ in range(5):
                started = time.monotonic()
                response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=1.0)
                timings.append(time.monotonic() - started)
                assert response.status_code == 200, response.text
                time.sleep(0.3)
        print(f"real requests among {SLOW_CONNECTIONS} slow connections ({opened[0]} opened in all): "
              f"{', '.join(f'{t:.3f}s' for t in timings)}")
        assert opened[0] >= SLOW_CONNECTIONS
        assert max(timings) < 1.0
        assert server.process.poll() is None, server.output()
        assert "Traceback" not in server.output() and "Too many open files" not in server.output(), server.output()
    finally:
        server.stop()


# -- deadlines and the keep-alive limit, with short limits -----------------------------------------

@pytest.fixture
def guarded(tmp_path):
    """The API app under uvicorn with the guarded protocol in a thread, with short limits."""
    from paas_svc.api.app import create_app, http_server
    from paas_svc.api.context import ServerContext
    from paas_svc.api.guard import ServerLimits

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    limits = ServerLimits(header_seconds=0.5, body_seconds=0.5, keep_alive_seconds=5, requests_per_connection=3)
    port = free_port()
    server = http_server(create_app(ServerContext(home)), "127.0.0.1", port, limits=limits)
    with running_on_a_thread(server):
        yield port


def read_until_closed(sock: socket.socket, limit_seconds: float) -> tuple[bytes, float]:
    started = time.monotonic()
    sock.settimeout(limit_seconds)
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received, time.monotonic() - started
        received += chunk


def test_headers_sent_a_byte_at_a_time_meet_the_header_deadline(guarded):
    with socket.create_connection(("127.0.0.1", guarded)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(40):  # one header byte every 0.1 s: would take 4 s
                sock.sendall(b"X")
                time.sleep(0.1)
        except OSError:  # closed by the server: the point
            pass
        received, _ = read_until_closed(sock, 5)
        assert time.monotonic() - started < 2.5
        assert received.startswith(b"HTTP/1.1 408"), received


def test_a_body_sent_too_slowly_meets_the_body_deadline(guarded):
    with socket.create_connection(("127.0.0.1", guarded)) as sock:
        sock.sendall(b"POST /api/orgs/default/projects/default/envs/production/services/ HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        started = time.monotonic()
        received, _ = read_until_closed(sock, 5)
        assert time.monotonic() - started < 2.5, received


def test_an_idle_connection_between_requests_does_not_stay_and_every_third_request_closes_it(guarded):
    request = b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
    with httpx.Client(base_url=f"http://127.0.0.1:{guarded}") as client:
        answers = [client.get("/api/openapi.json") for _ in range(3)]
    assert [a.headers.get("connection") for a in answers] == [None, None, "close"]
    with socket.create_connection(("127.0.0.1", guarded)) as sock:
        sock.sendall(request)
        sock.recv(65536)
        sock.sendall(b"GET /api/openapi.json HTTP/1.1\r\n")  # the next request, half-sent
        started = time.monotonic()
        received, _ = read_until_closed(sock, 5)
        assert time.monotonic() - started < 2.5


def test_duplicate_json_keys_are_a_400():
    from paas_svc.api.http import ApiError, parse_json_body
    from paas_svc.api.routes import ADD_SERVICE_BODY

    body = b'{"slug": "cache", "templateKey": "redis-7", "slug": "other"}'
    with pytest.raises(ApiError) as refused:
        parse_json_body("application/json", body, ADD_SERVICE_BODY)
    assert refused.value.status == 400 and refused.value.code == "duplicate_key" and "'slug'" in refused.value.message
    nested = b'{"slug": "cache", "templateKey": {"a": 1, "a": 2}}'
    with pytest.raises(ApiError) as nested_refused:
        parse_json_body("application/json", nested, ADD_SERVICE_BODY)
    assert nested_refused.value.code == "duplicate_key"
    assert parse_json_body("application/json", b'{"slug": "cache", "templateKey": "redis-7"}', ADD_SERVICE_BODY)["slug"] == "cache"


# -- an upload's body: a progress deadline instead of one for the whole body ------------------------

@pytest.fixture
def uploads():
    """A server whose POST /up is an upload (as `svc restore`'s): 0.5 s windows, at least 1000 bytes a second."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from paas_svc.api.app import http_server
    from paas_svc.api.guard import ServerLimits

    async def count(request):
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
        return JSONResponse({"bytes": received})

    app = Starlette(routes=[Route("/up", count, methods=["POST"]), Route("/other", count, methods=["POST"])])
    app.state.is_upload = lambda method, path: (method, path) == ("POST", "/up")
    limits = ServerLimits(header_seconds=0.5, body_seconds=0.5, upload_min_bytes_per_second=1000)
    port = free_port()
    server = http_server(app, "127.0.0.1", port, limits=limits)
    with running_on_a_thread(server):
        yield port


def _trickle(port: int, path: str, chunks: int, stall_after: int | None = None) -> tuple[bytes, float]:
    """POST 200 bytes every 0.1 s (2000 bytes a second); silent after `stall_after` chunks."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {200 * chunks}\r\n\r\n".encode())
        started = time.monotonic()
        try:
            for index in range(chunks):
                if stall_after is not None and index >= stall_after:
                    break
                sock.sendall(b"u" * 200)
                time.sleep(0.1)
        except OSError:  # closed by the server
            pass
        received, _ = read_until_closed(sock, 10)
        return received, time.monotonic() - started


def test_an_upload_that_keeps_coming_outlives_the_body_deadline(uploads):
    received, elapsed = _trickle(uploads, "/up", 25)  # 2.5 s: five times body_seconds
    assert received.startswith(b"HTTP/1.1 200") and b'{"bytes":5000}' in received, received
    assert elapsed >= 2.4
    cut, elapsed = _trickle(uploads, "/other", 25)  # the same body elsewhere: the whole-body deadline
    assert not cut.startswith(b"HTTP/1.1 200") and elapsed < 2, cut


def test_an_upload_that_stops_coming_is_closed(uploads):
    received, elapsed = _trickle(uploads, "/up", 50, stall_after=5)
    assert not received.startswith(b"HTTP/1.1 200") and elapsed < 2.5, received
