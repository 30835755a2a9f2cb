"""The engine protocol every adapter implements (local, remote, Swarm), and the small typed
views of containers and tasks the rest of paas reads instead of raw inspect dicts.

No Docker SDK here: the hot paths (`svc list`, `env export`) import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, NamedTuple, Protocol

from paas_svc.naming import NETWORK_NAME

PUBLISH_ALL = "0.0.0.0"


class ContainerView(NamedTuple):
    """What paas needs to know about one container (or a Swarm service's current task)."""

    name: str
    state: str  # created, running, restarting, exited, paused, dead; for Swarm: pending, starting, running, failed...
    status: str  # the engine's words, e.g. "Exited (1) 3 seconds ago" or a task's error
    image: str
    labels: dict
    exit_code: int | None = None
    ports: dict | None = None  # container port -> (host ip, host port)
    node: str | None = None  # Swarm: the node the task is (or would be) on

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def restarting(self) -> bool:
        return self.state == "restarting"


# The name the fast status path has used since its first version.
ContainerState = ContainerView


def view_from_list_item(item: dict) -> ContainerView:
    """A container from `GET /containers/json` (the list endpoint)."""
    names = item.get("Names") or ["/"]
    status = item.get("Status", "")
    exit_code = None
    if status.startswith("Exited (") and ")" in status:
        code = status[len("Exited ("):status.index(")")]
        exit_code = int(code) if code.lstrip("-").isdigit() else None
    ports = {p["PrivatePort"]: (p.get("IP", ""), p["PublicPort"]) for p in item.get("Ports") or [] if p.get("PublicPort")}
    return ContainerView(names[0].lstrip("/"), item.get("State", ""), status, item.get("Image", ""),
                         item.get("Labels") or {}, exit_code, ports)


def view_from_inspect(document: dict) -> ContainerView:
    """A container from `GET /containers/{id}/json` (inspect)."""
    state = document.get("State") or {}
    bindings = (document.get("HostConfig") or {}).get("PortBindings") or {}
    ports = {int(key.split("/")[0]): (b[0].get("HostIp", ""), int(b[0]["HostPort"]))
             for key, b in bindings.items() if b and b[0].get("HostPort")}
    config = document.get("Config") or {}
    status = state.get("Status", "")
    if state.get("Restarting"):
        status = "restarting"
    return ContainerView(document.get("Name", "").lstrip("/"), status, state.get("Error") or status,
                         config.get("Image", ""), config.get("Labels") or {}, state.get("ExitCode"), ports)


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: list[str] | None
    environment: dict[str, str]
    labels: dict[str, str]
    volume: str
    volume_path: str
    port_bindings: dict[int, int]  # container port -> host port
    network: str = NETWORK_NAME
    restart_policy: str = "unless-stopped"
    publish_ip: str = "127.0.0.1"  # the host address the ports are bound to
    node: str | None = None  # Swarm: the node the service is pinned to
    secret_files: dict[str, str] | None = None  # Swarm: variable NAME_FILE -> secret value (a Docker secret)


@dataclass(frozen=True)
class PullProgress:
    layer: str
    status: str
    current: int | None
    total: int | None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes

    def error_text(self) -> str:
        text = (self.stderr or self.stdout).decode("utf-8", errors="replace").strip()
        return text[-2000:] if text else "no output"


class Engine(Protocol):
    """Every call paas makes to a Docker engine. `name` is a service's container name: on a
    plain engine the container itself, on Swarm the service whose one task runs it."""

    address: str

    def ensure_network(self, labels: dict[str, str]) -> None: ...
    def network_exists(self) -> bool: ...
    def ensure_volume(self, name: str, labels: dict[str, str]) -> None: ...
    def volume_exists(self, name: str) -> bool: ...
    def remove_volume(self, name: str) -> bool: ...
    def list_volumes(self, label_filters: list[str]) -> list[dict]: ...
    def image_present(self, image: str) -> bool: ...
    def pull(self, image: str, on_progress: Callable[[PullProgress], None]) -> None: ...
    def create_container(self, spec: ContainerSpec) -> str: ...
    def start(self, name: str) -> None: ...
    def stop(self, name: str, timeout: int = 10) -> None: ...
    def restart(self, name: str, timeout: int = 10) -> None: ...
    def remove_container(self, name: str) -> bool: ...
    def inspect_container(self, name: str) -> ContainerView | None: ...
    def logs_tail(self, name: str, lines: int) -> str: ...
    def stream_logs(self, name: str, follow: bool, tail: int | str) -> Iterator[bytes]: ...
    def list_containers(self, label_filters: list[str]) -> list[ContainerView]: ...
    def exec_capture(self, name: str, command: list[str], environment: dict[str, str] | None = None) -> ExecResult: ...
    def exec_stream(self, name: str, command: list[str], sink: BinaryIO, environment: dict[str, str] | None = None) -> ExecResult: ...
    def get_archive(self, name: str, path: str) -> Iterator[bytes]: ...
    def put_archive(self, name: str, path: str, data: BinaryIO | bytes) -> None: ...
    def run_once(self, image: str, command: list[str], entrypoint: list[str] | None, labels: dict[str, str],
                 timeout: float = 60.0) -> ExecResult: ...
    def server_time(self) -> str: ...
    def close(self) -> None: ...
