"""The Docker engine adapter: every call paas makes to Docker through the SDK lives here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import docker
import docker.errors
from docker.utils import parse_repository_tag

from paas_svc.docker_status import ContainerState, _state_from_json, engine_address, unreachable
from paas_svc.errors import Conflict, DockerUnavailable, ProvisioningFailed
from paas_svc.naming import LABEL_MANAGED, NETWORK_NAME

API_TIMEOUT_SECONDS = 60


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


@dataclass(frozen=True)
class PullProgress:
    layer: str
    status: str
    current: int | None
    total: int | None


def _connection_error(error: Exception) -> DockerUnavailable:
    text = str(error)
    if "ermission denied" in text:
        return unreachable(engine_address(), "Permission denied")
    return unreachable(engine_address(), "connection refused" if "efused" in text else "no engine answered")


class Engine:
    def __init__(self) -> None:
        try:
            self._client = docker.from_env(timeout=API_TIMEOUT_SECONDS)
            self._api = self._client.api
            self._api.ping()
        except docker.errors.DockerException as error:
            raise _connection_error(error) from None
        except Exception as error:  # requests' ConnectionError and friends
            raise _connection_error(error) from None

    # -- network, volumes, images -------------------------------------------------

    def ensure_network(self, labels: dict[str, str]) -> None:
        if self._api.networks(names=[NETWORK_NAME]):
            if any(n["Name"] == NETWORK_NAME for n in self._api.networks(names=[NETWORK_NAME])):
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
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.NotFound:
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
            port_bindings={f"{port}/tcp": ("127.0.0.1", host_port) for port, host_port in spec.port_bindings.items()},
            mounts=[docker.types.Mount(target=spec.volume_path, source=spec.volume, type="volume")],
            restart_policy={"Name": spec.restart_policy},
            network_mode=spec.network,
        )
        try:
            created = self._api.create_container(
                spec.image,
                command=spec.command,
                name=spec.name,
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
            self._api.remove_container(name, force=True)
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

    def exec_run(self, name: str, command: list[str], environment: dict[str, str] | None = None) -> tuple[int, bytes]:
        exec_id = self._api.exec_create(name, command, environment=environment, stdout=True, stderr=True)
        output = self._api.exec_start(exec_id)
        return self._api.exec_inspect(exec_id)["ExitCode"], output

    def list_containers(self, label_filters: list[str]) -> list[ContainerState]:
        return [_state_from_json(item) for item in self._api.containers(all=True, filters={"label": label_filters})]


def _pull_hint(image: str) -> str:
    return (f"Check the image name and your registry access (`docker pull {image}`). On a host without registry access, "
            "load the image with `docker load` or pass --image with a mirror or local build.")


def managed_labels(profile_id: str) -> dict[str, str]:
    from paas_svc.naming import LABEL_PROFILE

    return {LABEL_MANAGED: "true", LABEL_PROFILE: profile_id}
