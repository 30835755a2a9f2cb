"""The Docker engine adapter: every call paas makes to Docker through the SDK lives here."""

from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import docker
import docker.errors
from docker.utils import parse_repository_tag

from paas_svc.docker_status import ContainerState, _state_from_json, engine_address, unreachable
from paas_svc.dsn import HOST_VIEW_HOST
from paas_svc.errors import Conflict, DockerUnavailable, ProvisioningFailed
from paas_svc.naming import NETWORK_NAME

API_TIMEOUT_SECONDS = 60
LONG_CALL_TIMEOUT = None  # exec/archives of big data sets: no socket timeout
COPY_CHUNK = 1024 * 1024  # chunk size of archive streams
STDERR_TAIL_BYTES = 16 * 1024  # what exec_stream keeps of a command's stderr


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: list[str] | None
    environment: dict[str, str]
    labels: dict[str, str]
    volume: str
    volume_path: str
    port_bindings: dict[int, int]  # container port -> host port (published on 127.0.0.1)
    network: str = NETWORK_NAME
    restart_policy: str = "unless-stopped"
    hostname: str | None = None  # a fixed hostname (RabbitMQ keys its data by node name)
    memory_bytes: int | None = None  # hard memory limit (None: unlimited)
    cpus: float | None = None  # CPU quota in cores (None: unlimited)


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


def _connection_error(error: Exception) -> DockerUnavailable:
    text = str(error)
    if "ermission denied" in text:
        return unreachable(engine_address(), "Permission denied")
    return unreachable(engine_address(), "connection refused" if "efused" in text else "no engine answered")


class Engine:
    def __init__(self) -> None:
        try:
            # from_env asks the engine for its API version: that request doubles as the ping.
            self._client = docker.from_env(timeout=API_TIMEOUT_SECONDS)
            self._api = self._client.api
        except Exception as error:  # DockerException, and requests' ConnectionError and friends
            raise _connection_error(error) from None

    # -- network, volumes, images -------------------------------------------------

    def ensure_network(self, labels: dict[str, str]) -> None:
        if self.network_exists():
            return
        try:
            self._api.create_network(NETWORK_NAME, driver="bridge", labels=labels, check_duplicate=True)
        except docker.errors.APIError as error:
            if error.status_code != 409:  # another process created it first
                raise ProvisioningFailed(f"Could not create the network {NETWORK_NAME}: {error.explanation}") from None

    def network_exists(self) -> bool:
        return any(n["Name"] == NETWORK_NAME for n in self._api.networks(names=[NETWORK_NAME]))

    def ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        """Creates the volume, or keeps the existing one of that name (the engine call is idempotent)."""
        self._api.create_volume(name=name, driver="local", labels=labels)

    def volume_exists(self, name: str) -> bool:
        try:
            self._api.inspect_volume(name)
            return True
        except docker.errors.NotFound:
            return False

    def remove_volume(self, name: str) -> bool:
        try:
            self._api.remove_volume(name, force=True)
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as error:
            raise Conflict(f"Could not remove volume {name}: {error.explanation}") from None

    def list_volumes(self, label_filters: list[str]) -> list[dict]:
        return self._api.volumes(filters={"label": label_filters}).get("Volumes") or []

    def image_present(self, image: str) -> bool:
        try:
            self._api.inspect_image(image)
            return True
        except docker.errors.NotFound:  # ImageNotFound is one
            return False

    def pull(self, image: str, on_progress: Callable[[PullProgress], None]) -> None:
        repository, tag = parse_repository_tag(image)
        try:
            for event in self._api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if "error" in event:
                    raise ProvisioningFailed(f"Could not pull image {image}: {event['error'].strip()}", hint=_pull_hint(image))
                detail = event.get("progressDetail") or {}
                on_progress(PullProgress(event.get("id", ""), event.get("status", ""), detail.get("current"), detail.get("total")))
        except docker.errors.APIError as error:
            raise ProvisioningFailed(f"Could not pull image {image}: {error.explanation or error}", hint=_pull_hint(image)) from None
        if not self.image_present(image):
            raise ProvisioningFailed(f"Pulling {image} finished but the image is not on this host.", hint=_pull_hint(image))

    # -- containers ---------------------------------------------------------------

    def create_container(self, spec: ContainerSpec) -> str:
        host_config = self._api.create_host_config(
            port_bindings={f"{port}/tcp": (HOST_VIEW_HOST, host_port) for port, host_port in spec.port_bindings.items()},
            mounts=[docker.types.Mount(target=spec.volume_path, source=spec.volume, type="volume")],
            restart_policy={"Name": spec.restart_policy},
            network_mode=spec.network,
            mem_limit=spec.memory_bytes,
            nano_cpus=int(round(spec.cpus * 1e9)) if spec.cpus else None,
        )
        try:
            created = self._api.create_container(
                spec.image,
                command=spec.command,
                name=spec.name,
                hostname=spec.hostname,
                environment=spec.environment,
                labels=spec.labels,
                ports=[(port, "tcp") for port in spec.port_bindings],
                host_config=host_config,
                detach=True,
            )
        except docker.errors.APIError as error:
            if error.status_code == 409:
                raise Conflict(f"A container named {spec.name} already exists.",
                               hint="Run `paas doctor` to see how it relates to the state.") from None
            raise ProvisioningFailed(f"Could not create container {spec.name}: {error.explanation}") from None
        return created["Id"]

    def start(self, name: str) -> None:
        try:
            self._api.start(name)
        except docker.errors.APIError as error:
            explanation = str(error.explanation or error)
            if "port is already allocated" in explanation or "address already in use" in explanation:
                raise ProvisioningFailed(
                    f"Could not start {name}: its host port is already taken by another process.",
                    hint="Free the port, or remove the service and add it again with another --port.",
                ) from None
            raise ProvisioningFailed(f"Could not start {name}: {explanation}") from None

    def stop(self, name: str, timeout: int = 10) -> None:
        try:
            self._api.stop(name, timeout=timeout)
        except docker.errors.NotFound:
            pass

    def restart(self, name: str, timeout: int = 10) -> None:
        self._api.restart(name, timeout=timeout)

    def remove_container(self, name: str) -> bool:
        try:
            # v=True removes the container's ANONYMOUS volumes (e.g. mongo:7's /data/configdb);
            # named volumes such as the service's data volume are never removed by it.
            self._api.remove_container(name, force=True, v=True)
            return True
        except docker.errors.NotFound:
            return False

    def inspect_container(self, name: str) -> dict | None:
        try:
            return self._api.inspect_container(name)
        except docker.errors.NotFound:
            return None

    def logs_tail(self, name: str, lines: int) -> str:
        try:
            return self._api.logs(name, stdout=True, stderr=True, tail=lines).decode("utf-8", errors="replace")
        except docker.errors.NotFound:
            return ""

    def stream_logs(self, name: str, follow: bool, tail: int | str) -> Iterator[bytes]:
        return self._api.logs(name, stdout=True, stderr=True, stream=True, follow=follow, tail=tail)

    def list_containers(self, label_filters: list[str]) -> list[ContainerState]:
        return [_state_from_json(item) for item in self._api.containers(all=True, filters={"label": label_filters})]

    def cpu_count(self) -> int:
        """CPUs the engine's host has (the most a container's --cpus may ask for)."""
        return int(self._api.info().get("NCPU") or 1)

    def container_stats(self, name: str) -> dict | None:
        """One stats sample (with the previous one, for CPU use); None when the container is gone."""
        try:
            return self._api.stats(name, stream=False)
        except docker.errors.NotFound:
            return None

    def volume_sizes(self) -> dict[str, int]:
        """Bytes used per volume, from ONE `docker system df` request (-1 when the engine does not know)."""
        volumes = self._api.df().get("Volumes") or []
        return {volume["Name"]: int((volume.get("UsageData") or {}).get("Size", -1)) for volume in volumes}

    # -- exec, archives, throwaway containers (backup, restore, upgrade) ------------

    @contextmanager
    def _without_timeout(self) -> Iterator[None]:
        """Long data transfers and tools that print nothing for minutes (pg_restore) must not hit
        the client's 60 s socket timeout."""
        saved = self._api.timeout
        self._api.timeout = LONG_CALL_TIMEOUT
        try:
            yield
        finally:
            self._api.timeout = saved

    def exec_capture(self, name: str, command: list[str], environment: dict[str, str] | None = None) -> ExecResult:
        """Run a command in a running container; stdout and stderr kept apart."""
        stdout = io.BytesIO()
        result = self.exec_stream(name, command, stdout, environment)
        return ExecResult(result.exit_code, stdout.getvalue(), result.stderr)

    def exec_stream(self, name: str, command: list[str], sink: BinaryIO, environment: dict[str, str] | None = None) -> ExecResult:
        """Run a command in a running container, writing its stdout to sink as it comes
        (the result's stdout is empty; its stderr is the last 16 KiB)."""
        api = self._api
        try:
            exec_id = api.exec_create(name, command, environment=environment, stdout=True, stderr=True)
        except docker.errors.APIError as error:
            raise Conflict(f"Cannot run {command[0]} in {name}: {error.explanation or error}",
                           hint="Is the service running? See `paas svc list`.") from None
        stderr = bytearray()
        with self._without_timeout():
            for out, err in api.exec_start(exec_id, stream=True, demux=True):
                if out:
                    sink.write(out)
                if err:
                    stderr.extend(err)
                    del stderr[:-STDERR_TAIL_BYTES]
        exit_code = api.exec_inspect(exec_id)["ExitCode"]
        return ExecResult(exit_code if exit_code is not None else -1, b"", bytes(stderr))

    def exec_stdin(self, name: str, command: list[str], source: BinaryIO, environment: dict[str, str] | None = None) -> ExecResult:
        """Run a command in a running container with `source` as its stdin (read to EOF, then
        closed); stdout and stderr are kept (their last 16 KiB each)."""
        import socket as socket_module

        from docker.utils.socket import frames_iter

        api = self._api
        try:
            exec_id = api.exec_create(name, command, environment=environment, stdin=True, stdout=True, stderr=True)
        except docker.errors.APIError as error:
            raise Conflict(f"Cannot run {command[0]} in {name}: {error.explanation or error}",
                           hint="Is the service running? See `paas svc list`.") from None
        output = {1: bytearray(), 2: bytearray()}
        with self._without_timeout():
            stream = api.exec_start(exec_id, socket=True)
            raw = getattr(stream, "_sock", stream)
            try:
                while chunk := source.read(COPY_CHUNK):
                    raw.sendall(chunk)
                raw.shutdown(socket_module.SHUT_WR)  # EOF on the command's stdin
                for stream_id, data in frames_iter(stream, tty=False):
                    if stream_id in output:
                        output[stream_id].extend(data)
                        del output[stream_id][:-STDERR_TAIL_BYTES]
            finally:
                stream.close()
        exit_code = api.exec_inspect(exec_id)["ExitCode"]
        return ExecResult(exit_code if exit_code is not None else -1, bytes(output[1]), bytes(output[2]))

    def get_archive(self, name: str, path: str) -> Iterator[bytes]:
        """A tar stream of `path` in the container (running or stopped; volumes included)."""
        try:
            with self._without_timeout():
                chunks, _ = self._api.get_archive(name, path, chunk_size=COPY_CHUNK)
        except docker.errors.NotFound:
            raise ProvisioningFailed(f"{path} does not exist in {name}.") from None
        except docker.errors.APIError as error:
            raise ProvisioningFailed(f"Could not read {path} from {name}: {error.explanation or error}") from None
        return chunks

    def put_archive(self, name: str, path: str, data: BinaryIO | bytes) -> None:
        """Extract a tar into `path` (which must exist) in a container, running, stopped or
        only created; volumes mounted in it receive the files."""
        try:
            with self._without_timeout():
                self._api.put_archive(name, path, data)
        except docker.errors.APIError as error:
            raise ProvisioningFailed(f"Could not copy data into {name}:{path}: {error.explanation or error}") from None

    def run_once(self, image: str, command: list[str], entrypoint: list[str] | None, labels: dict[str, str],
                 timeout: float = 60.0) -> ExecResult:
        """Run a throwaway container (no network, no volume) and return its exit code and output."""
        api = self._api
        container = api.create_container(image, command=command, entrypoint=entrypoint, labels=labels,
                                         host_config=api.create_host_config(network_mode="none"))["Id"]
        try:
            api.start(container)
            exit_code = api.wait(container, timeout=timeout)["StatusCode"]
            return ExecResult(exit_code, api.logs(container, stdout=True, stderr=False),
                              api.logs(container, stdout=False, stderr=True))
        except Exception as error:  # noqa: BLE001 - API error or the wait timing out: no answer
            return ExecResult(-1, b"", str(getattr(error, "explanation", None) or error).encode())
        finally:
            try:
                api.remove_container(container, force=True, v=True)
            except docker.errors.APIError:
                pass


def _pull_hint(image: str) -> str:
    return (f"Check the image name and your registry access (`docker pull {image}`). On a host without registry access, "
            "load the image with `docker load` or pass --image with a mirror or local build.")

