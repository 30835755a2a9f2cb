"""The fast read path of the engine protocol: live container (and Swarm task) states in one
raw HTTP request per engine, without importing the Docker SDK.

`svc list`, `env export` and `run` need only the state of our containers; the SDK costs
~120 ms to import, a raw request on the engine's socket ~5 ms. Every engine form is served
here: a unix socket, tcp, tcp with TLS (the `ssl` module, loaded only then), and ssh
through a forwarded unix socket (paas_svc.engine.ssh_forward). Several targets are asked in
parallel threads; one that does not answer does not fail the others.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

from paas_svc.engine.views import ContainerState, ContainerView, view_from_list_item  # noqa: F401 - ContainerState: old name
from paas_svc.errors import DockerUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT_SECONDS = 10
UNIX, TCP = "unix", "tcp"


class Endpoint(NamedTuple):
    """Where and how to speak HTTP to one engine."""

    kind: str  # unix or tcp
    address: object  # socket path, or (host, port)
    tls: tuple[str, str, str] | None = None  # (ca, cert, key) files: verify the engine, present our client cert
    display: str = ""  # the address as the user wrote it, for messages


def engine_address() -> str:
    """The local engine: DOCKER_HOST when set, else the default socket."""
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def parse_docker_host(url: str) -> tuple[str, str, int]:
    """(scheme, host or socket path, port) of unix://, tcp:// and ssh:// URLs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("no scheme")
    if scheme == "unix":
        return scheme, rest or DEFAULT_SOCKET, 0
    if scheme in ("tcp", "http", "https", "ssh"):
        host_port = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        if host_port.startswith("["):  # [ipv6]:port
            host, _, port = host_port[1:].partition("]")
            port = port.lstrip(":")
        elif host_port.count(":") == 1:
            host, _, port = host_port.partition(":")
        else:
            host, port = host_port, ""
        default = 22 if scheme == "ssh" else 2376 if scheme == "https" else 2375
        if not host or (port and not port.isdigit()):
            raise ValueError("bad host or port")
        return ("tcp" if scheme in ("http", "https") else scheme), host, int(port or default)
    raise ValueError(f"unknown scheme {scheme}")


def local_endpoint() -> Endpoint:
    """The local engine, DOCKER_HOST honoured (with DOCKER_CERT_PATH's ca/cert/key.pem when
    DOCKER_TLS_VERIFY is set). An ssh:// DOCKER_HOST is a target's job: add it with `paas target add`."""
    address = engine_address()
    try:
        scheme, host, port = parse_docker_host(address)
    except ValueError:
        raise DockerUnavailable(f"DOCKER_HOST={address} is not a unix:// or tcp:// address.") from None
    if scheme == UNIX:
        return Endpoint(UNIX, host, None, address)
    if scheme == TCP:
        tls = None
        if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"):
            folder = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
            tls = tuple(os.path.join(folder, name) for name in ("ca.pem", "cert.pem", "key.pem"))
        return Endpoint(TCP, (host, port), tls, address)
    raise DockerUnavailable(f"DOCKER_HOST={address}: reach an engine over ssh with `paas target add NAME --docker-host {address}`.")


def http_get(endpoint: Endpoint, path: str) -> tuple[int, bytes]:
    """One HTTP/1.0 GET on a fresh connection: the engine answers without chunking and closes.
    (http.client would cost ~20 ms of imports on every `env export` and `svc list`.)"""
    if endpoint.kind == UNIX:
        # The C socket type: the `socket` module's enum set-up costs ~2 ms per call of
        # `env export`, and a unix socket needs none of what it adds.
        import _socket

        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.settimeout(TIMEOUT_SECONDS)
            sock.connect(endpoint.address)
            chunks = _exchange(sock, path)
        finally:
            sock.close()
    else:
        import socket

        with socket.create_connection(endpoint.address, timeout=TIMEOUT_SECONDS) as raw:  # IPv4 and IPv6
            if endpoint.tls is None:
                chunks = _exchange(raw, path)
            else:
                with _tls_context(endpoint.tls).wrap_socket(raw, server_hostname=endpoint.address[0]) as sock:
                    chunks = _exchange(sock, path)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(0, "not an HTTP answer")
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return int(status_line[1]), body


def _tls_context(files: tuple[str, str, str]):
    import ssl

    ca, cert, key = files
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    return context


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


def percent_encode(text: str) -> str:
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


def get_json(endpoint: Endpoint, path: str):
    try:
        status, body = http_get(endpoint, path)
    except OSError as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise unreachable(endpoint.display, reason.lower()) from None
    if status != 200:
        raise DockerUnavailable(f"The Docker engine at {endpoint.display} answered {status}: {body[:200].decode(errors='replace')}")
    return json.loads(body)


def list_containers(label_filters: list[str], endpoint: Endpoint | None = None) -> list[ContainerView]:
    """All containers (running or not) carrying every `key=value` label given."""
    endpoint = endpoint or local_endpoint()
    filters = percent_encode(json.dumps({"label": label_filters}))
    return [view_from_list_item(item) for item in get_json(endpoint, f"/containers/json?all=1&filters={filters}")]


# -- Swarm: a service's state comes from its tasks and its pinned node ----------------------

LABEL_NODE = "paas.node"  # the node a Swarm service is pinned to (its hostname)
_STARTING_TASK_STATES = ("new", "allocated", "assigned", "accepted", "preparing", "ready", "starting")


def list_swarm_services(label_filters: list[str], endpoint: Endpoint) -> list[ContainerView]:
    """Our Swarm services with the state of their one task, in three requests (services,
    their tasks, nodes) whatever their number."""
    filters = percent_encode(json.dumps({"label": label_filters}))
    services = get_json(endpoint, f"/services?filters={filters}")
    if not services:
        return []
    task_filter = percent_encode(json.dumps({"service": [s["ID"] for s in services]}))
    tasks = get_json(endpoint, f"/tasks?filters={task_filter}")
    nodes = {n["Description"]["Hostname"]: n for n in get_json(endpoint, "/nodes")}
    by_service: dict[str, list[dict]] = {}
    for task in tasks:
        by_service.setdefault(task["ServiceID"], []).append(task)
    return [swarm_service_view(s, by_service.get(s["ID"], []), nodes) for s in services]


def swarm_service_view(service: dict, tasks: list[dict], nodes: dict[str, dict]) -> ContainerView:
    """Running, starting, pending (its node is down or drained: it waits, never moves),
    failed (with the task's error) or exited (scaled to 0 by `svc stop`)."""
    spec = service["Spec"]
    labels = spec.get("Labels") or {}
    image = spec["TaskTemplate"]["ContainerSpec"]["Image"].split("@", 1)[0]
    node_name = labels.get(LABEL_NODE)
    ports = {p["TargetPort"]: ("", p["PublishedPort"]) for p in (spec.get("EndpointSpec") or {}).get("Ports") or []
             if p.get("PublishedPort")}
    replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
    limits = ((spec["TaskTemplate"].get("Resources") or {}).get("Limits") or {})

    def view(state: str, status: str, exit_code: int | None = None) -> ContainerView:
        return ContainerView(spec["Name"], state, status, image, labels, exit_code, ports, node_name,
                             limits.get("MemoryBytes") or None, limits.get("NanoCPUs") or None)

    if replicas == 0:
        return view("exited", "stopped (0 replicas)")
    node = nodes.get(node_name or "")
    if node is None:
        return view("pending", f"its node {node_name} is not in the swarm")
    node_state, availability = node["Status"]["State"], node["Spec"]["Availability"]
    if node_state != "ready" or availability != "active":
        return view("pending", f"node {node_name} is {node_state if node_state != 'ready' else availability}; "
                               "the service waits for it and is never moved to another node")
    current = [t for t in tasks if t.get("DesiredState") == "running"] or tasks
    if not current:
        return view("starting", "no task yet")
    task = max(current, key=lambda t: (t.get("Version", {}).get("Index", 0), t.get("CreatedAt", "")))
    status = task.get("Status") or {}
    state = status.get("State", "")
    exit_code = ((status.get("ContainerStatus") or {}).get("ExitCode"))
    if state == "running":
        return view("running", status.get("Message", "running"), exit_code)
    if state == "pending":
        return view("pending", status.get("Err") or status.get("Message") or "pending")
    if state in _STARTING_TASK_STATES:
        return view("starting", status.get("Message") or state)
    return view("failed", status.get("Err") or status.get("Message") or state, exit_code)
