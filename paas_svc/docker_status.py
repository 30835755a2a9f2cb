"""Live container states in ONE engine request, without importing the Docker SDK.

`svc list`, `env export` and `run` need only the state of our containers; the SDK
costs ~120 ms to import, a raw request on the engine's socket ~5 ms.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from paas_svc.errors import DockerUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT_SECONDS = 10


class ContainerState(NamedTuple):
    name: str
    state: str  # created, running, restarting, exited, paused, dead
    status: str  # human text from the engine, e.g. "Exited (1) 3 seconds ago"
    image: str
    labels: dict


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


UNIX, TCP = "unix", "tcp"


def _socket_address() -> tuple[str, object] | None:
    """(kind, address) for unix:// and plain tcp:// engines; None means use the SDK (TLS, ssh)."""
    address = engine_address()
    if address.startswith("unix://"):
        return UNIX, address[len("unix://"):] or DEFAULT_SOCKET
    if address.startswith(("tcp://", "http://")) and not os.environ.get("DOCKER_TLS_VERIFY") and not os.environ.get("DOCKER_CERT_PATH"):
        host_port = address.split("://", 1)[1].split("/", 1)[0]
        host, _, port = host_port.rpartition(":") if ":" in host_port else (host_port, "", "2375")
        if not (port or "2375").isdigit():  # the same error `svc add` gives (through the SDK) for it
            raise unreachable(address, f"its port {port!r} is not a number")
        return TCP, (host.strip("[]") or "localhost", int(port or 2375))
    return None


def _http_get(kind: str, address: object, path: str) -> tuple[int, bytes]:
    """One HTTP/1.0 GET on a fresh connection: the engine answers without chunking and closes.
    (http.client would cost ~20 ms of imports on every `env export` and `svc list`.)"""
    if kind == UNIX:
        # The C socket type: the `socket` module's enum set-up costs ~2 ms per call of
        # `env export`, and a unix socket needs none of what it adds.
        import _socket

        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(TIMEOUT_SECONDS)
            sock.connect(address)
            chunks = _exchange(sock, path)
        finally:
            sock.close()
    else:
        import socket

        with socket.create_connection(address, timeout=TIMEOUT_SECONDS) as sock:  # IPv4 and IPv6
            chunks = _exchange(sock, path)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(0, "not an HTTP answer")
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return int(status_line[1]), body


def _exchange(sock, path: str) -> list[bytes]:
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return chunks


def _unchunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(out)


def _percent_encode(text: str) -> str:
    safe = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in text.encode())


def unreachable(address: str, reason: str) -> DockerUnavailable:
    if "ermission denied" in reason:
        return DockerUnavailable(
            f"Permission denied on the Docker engine at {address}.",
            hint="Add your user to the `docker` group (then log in again) or run with sudo.",
        )
    return DockerUnavailable(
        f"Cannot reach the Docker engine at {address}: {reason}.",
        hint="Is dockerd running? Start it, or point DOCKER_HOST at a running engine.",
    )


def list_containers(label_filters: list[str]) -> list[ContainerState]:
    """All containers (running or not) carrying every `key=value` label given."""
    target = _socket_address()
    if target is None:
        return _list_with_sdk(label_filters)
    filters = _percent_encode(json.dumps({"label": label_filters}))
    try:
        status, body = _http_get(*target, f"/containers/json?all=1&filters={filters}")
    except OSError as error:
        raise unreachable(engine_address(), (error.strerror or str(error) or type(error).__name__).lower()) from None
    if status != 200:
        raise DockerUnavailable(f"The Docker engine answered {status}: {body[:200].decode(errors='replace')}")
    return [_state_from_json(item) for item in json.loads(body)]


def _state_from_json(item: dict) -> ContainerState:
    names = item.get("Names") or ["/"]
    return ContainerState(
        name=names[0].lstrip("/"),
        state=item.get("State", ""),
        status=item.get("Status", ""),
        image=item.get("Image", ""),
        labels=item.get("Labels") or {},
    )


def _list_with_sdk(label_filters: list[str]) -> list[ContainerState]:
    from paas_svc.engine import Engine

    return Engine().list_containers(label_filters)
