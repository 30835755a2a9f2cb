"""The engine protocol every adapter implements (local, remote, Swarm), and the small typed
views of containers and tasks the rest of paas reads instead of raw inspect dicts.

No Docker SDK here. The hot paths import only engine_views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, Protocol

from paas_svc.engine.views import ContainerState, ContainerView, view_from_inspect, view_from_list_item  # noqa: F401
from paas_svc.naming import NETWORK_NAME


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
    hostname: str | None = None  # a fixed hostname (RabbitMQ keys its data by node name)
    memory_bytes: int | None = None  # hard memory limit (None: unlimited)
    cpus: float | None = None  # CPU quota in cores (None: unlimited)
    publish_ip: str = "127.0.0.1"  # the host address the ports are bound to
    node: str | None = None  # Swarm: the node the service is pinned to
    secret_files: dict[str, str] | None = None  # Swarm: variable NAME_FILE -> secret value (a Docker secret)
    # Called with the container's name once it is created, before it starts: what must be in it
    # first (a TLS service's /paas-tls files, written through the engine). A failure removes it.
    prepare: Callable[[str], None] | None = None
    # Swarm, instead of `prepare` (a task's container cannot be written before it starts): called
    # with the service's name, the files its containers must have, as Docker configs and secrets.
    files: Callable[[str], FileSet] | None = None


@dataclass(frozen=True)
class FileSet:
    """Files a container must have before its server starts (a TLS service's certificates)."""
    directory: str  # where they go (/paas-tls)
    files: tuple[tuple[str, bytes, int], ...]  # (name, content, mode)
    secret: frozenset[str]  # the names of those holding a private key (Docker secrets on Swarm, never configs)
    owner: Callable[[Engine, str], tuple[int, int]]  # (uid, gid) of the files, read from a created container of the image


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

    def ensure_network(self, labels: dict[str, str], name: str = NETWORK_NAME) -> None: ...
    def network_exists(self, name: str = NETWORK_NAME) -> bool: ...
    def network_labels(self, name: str) -> dict[str, str] | None: ...
    def remove_network(self, name: str) -> bool: ...
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
    def exec_stdin(self, name: str, command: list[str], source: BinaryIO, environment: dict[str, str] | None = None) -> ExecResult: ...
    def get_archive(self, name: str, path: str) -> Iterator[bytes]: ...
    def put_archive(self, name: str, path: str, data: BinaryIO | bytes) -> None: ...
    def run_once(self, image: str, command: list[str], entrypoint: list[str] | None, labels: dict[str, str],
                 timeout: float = 60.0) -> ExecResult: ...
    def cpu_count(self) -> int: ...
    def container_stats(self, name: str) -> dict | None: ...
    def volume_sizes(self) -> dict[str, int]: ...
    def server_time(self) -> str: ...
    def close(self) -> None: ...


def prepare_created(engine: Engine, spec: ContainerSpec) -> None:
    """After an adapter created `spec`'s container: run its `prepare`; a container that could
    not be prepared is removed again (never started half made)."""
    if spec.prepare is None:
        return
    try:
        spec.prepare(spec.name)
    except BaseException:
        engine.remove_container(spec.name)
        raise
