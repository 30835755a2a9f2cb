"""The Docker SDK adapter of the engine protocol (paas_svc.engine.protocol.Engine), for the local
engine and for remote ones (the same API over tcp+TLS, or over ssh through a forwarded unix
socket). The Swarm adapter (paas_svc.engine.swarm) builds on it. Every SDK call paas makes lives here
or there."""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

import docker
import docker.errors
from docker.utils import parse_repository_tag

from paas_svc.engine.protocol import (  # noqa: F401 - re-exported: the protocol's types are imported from here too
    ContainerSpec,
    ContainerView,
    Engine,
    ExecResult,
    PullProgress,
    prepare_created,
    view_from_inspect,
    view_from_list_item,
)
from paas_svc.engine.status import engine_address, unreachable
from paas_svc.errors import Conflict, DockerUnavailable, ProvisioningFailed
from paas_svc.naming import NETWORK_NAME

API_TIMEOUT_SECONDS = 60
LONG_CALL_TIMEOUT = None  # exec/archives of big data sets: no socket timeout
COPY_CHUNK = 1024 * 1024  # chunk size of archive streams
STDERR_TAIL_BYTES = 16 * 1024  # what exec_stream keeps of a command's stderr


def _connection_error(error: Exception, address: str) -> DockerUnavailable:
    text = str(error)
    if "ermission denied" in text:
        return unreachable(address, "Permission denied")
    if "CERTIFICATE" in text or "SSL" in text:
        return DockerUnavailable(f"TLS with the Docker engine at {address} failed: {text[:300]}",
                                 hint="Check the target's --tls-ca/--tls-cert/--tls-key files (`paas target show`).")
    return unreachable(address, "connection refused" if "efused" in text else "no engine answered")


class DockerEngine:
    """One Docker engine through the SDK. `base_url` None means the environment's (DOCKER_HOST)."""

    def __init__(self, base_url: str | None = None, tls_files: tuple[str, str, str] | None = None,
                 address: str | None = None) -> None:
        self.address = address or base_url or engine_address()
        try:
            # Asking the engine for its API version doubles as the ping.
            if base_url is None:
                self._client = docker.from_env(timeout=API_TIMEOUT_SECONDS)
            else:
                tls = None
                if tls_files is not None:
                    ca, cert, key = tls_files
                    tls = docker.tls.TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
                with _without_ca_bundle_variables():
                    self._client = docker.DockerClient(base_url=base_url, tls=tls, timeout=API_TIMEOUT_SECONDS, version="auto")
                # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace the target's own CA on
                # every request (psf/requests#3829): the target's CA is the only one to trust.
                self._client.api.trust_env = False
            self._api = self._client.api
        except Exception as error:  # DockerException, and requests' ConnectionError and friends
            raise _connection_error(error, self.address) from None

    @classmethod
    def from_environment(cls) -> "DockerEngine":
        return cls()

    def close(self) -> None:
        self._client.close()

    def info(self) -> dict:
        return self._api.info()

    def server_time(self) -> str:
        """The engine's clock (RFC 3339), for the clock-skew check of `doctor`."""
        return self._api.info().get("SystemTime", "")

    # -- network, volumes, images -------------------------------------------------

    def ensure_network(self, labels: dict[str, str], name: str = NETWORK_NAME) -> None:
        if self.network_exists(name):
            return
        try:
            self._api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
        except docker.errors.APIError as error:
            if error.status_code != 409:  # another process created it first
                raise ProvisioningFailed(f"Could not create the network {name}: {error.explanation}") from None

    def network_exists(self, name: str = NETWORK_NAME) -> bool:
        return self.network_labels(name) is not None

    def network_labels(self, name: str) -> dict[str, str] | None:
        """The labels of the network named exactly `name` (None: there is none)."""
        return next(((n.get("Labels") or {}) for n in self._api.networks(names=[name]) if n["Name"] == name), None)

    def remove_network(self, name: str) -> bool:
        """False when there is no such network; Conflict while containers are attached to it."""
        try:
            self._api.remove_network(name)
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as error:
            raise Conflict(f"Could not remove the network {name}: {error.explanation}") from None

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
            port_bindings={f"{port}/tcp": (spec.publish_ip, host_port) for port, host_port in spec.port_bindings.items()},
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
        prepare_created(self, spec)
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

    def remove_containers_using(self, volume: str) -> None:
        """Force-remove every container, running or not, that mounts the volume."""
        for container in self._api.containers(all=True, filters={"volume": volume}):
            try:
                self._api.remove_container(container["Id"], force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as error:
                if error.status_code != 409:  # 409: the engine is already removing it (Swarm's task clean-up)
                    raise Conflict(f"Could not remove container {container['Id'][:12]}: {error.explanation or error}") from None

    def create_volume_holder(self, name: str, image: str, volume: str, path: str, labels: dict[str, str]) -> None:
        """A created, never started container with the volume at `path`: archives reach the
        volume through it while no other container runs."""
        host_config = self._api.create_host_config(
            mounts=[docker.types.Mount(path, volume, type="volume")], network_mode="none")
        self._api.create_container(image, name=name, host_config=host_config, labels=labels, entrypoint=["true"])

    def inspect_container(self, name: str) -> ContainerView | None:
        try:
            return view_from_inspect(self._api.inspect_container(name))
        except docker.errors.NotFound:
            return None

    def logs_tail(self, name: str, lines: int) -> str:
        try:
            return self._api.logs(name, stdout=True, stderr=True, tail=lines).decode("utf-8", errors="replace")
        except docker.errors.NotFound:
            return ""

    def stream_logs(self, name: str, follow: bool, tail: int | str) -> Iterator[bytes]:
        return self._api.logs(name, stdout=True, stderr=True, stream=True, follow=follow, tail=tail)

    def list_containers(self, label_filters: list[str]) -> list[ContainerView]:
        return [view_from_list_item(item) for item in self._api.containers(all=True, filters={"label": label_filters})]

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


@contextmanager
def _without_ca_bundle_variables() -> Iterator[None]:
    import os

    saved = {name: os.environ.pop(name) for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE") if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _pull_hint(image: str) -> str:
    return (f"Check the image name and your registry access (`docker pull {image}`). On a host without registry access, "
            "load the image with `docker load` or pass --image with a mirror or local build.")
