"""The local-engine adapter of the engine protocol (paas_svc.engine.protocol.Engine): the Docker
Engine API spoken directly on the engine's unix socket with the standard library
(http.client over AF_UNIX, JSON), so `svc add`, start, stop, restart, rm, list and inspect
never import the Docker SDK (~100 ms, three quarters of it requests/urllib3).

Used for the LOCAL engine on a unix socket only (DOCKER_HOST=unix://... or the default
socket); tcp/TLS and ssh targets and Swarm keep the SDK adapter (paas_svc.engine.sdk).

What needs hijacked streams, big transfers or the SDK's registry credentials (exec, archives,
pull with progress, log streams, throwaway runs) goes to the SDK adapter, created on first
use, so it behaves exactly as before. Errors map to the same paas errors as the SDK adapter:
DockerUnavailable (same messages and hints), Conflict, ProvisioningFailed, and "not found"
as None/False where the protocol says so. An engine answer the SDK adapter does not map
either is an EngineError (a bug report, like the SDK's APIError).

Every request opens its own connection: a unix connect costs microseconds, and no
keep-alive connection can be found closed by the engine, or shared between threads.
"""

from __future__ import annotations

import errno
import http.client
import json
import socket
from typing import BinaryIO, Callable, Iterator
from urllib.parse import quote

from paas_svc.engine.protocol import ContainerSpec, ContainerView, ExecResult, PullProgress, prepare_created
from paas_svc.engine.status import UNIX, local_endpoint, percent_encode, unreachable
from paas_svc.engine.views import view_from_inspect, view_from_list_item
from paas_svc.errors import Conflict, ProvisioningFailed
from paas_svc.naming import NETWORK_NAME

API_TIMEOUT_SECONDS = 60  # as the SDK adapter's client
ANY_ERROR = tuple(range(400, 600))  # `ok=`: the caller maps every error status itself


class EngineError(Exception):
    """An engine answer no paas error stands for (the SDK adapter lets docker's APIError through
    in the same places)."""

    def __init__(self, status: int, method: str, path: str, explanation: str) -> None:
        super().__init__(f"{status} from the Docker engine for {method} {path.split('?')[0]}: {explanation}")
        self.status_code = status
        self.explanation = explanation


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _reason(error: OSError) -> str:
    """The words the SDK adapter uses for why the engine did not answer."""
    if isinstance(error, TimeoutError):
        return "no engine answered (timed out)"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "Permission denied"
    if error.errno == errno.ECONNREFUSED:
        return "connection refused"
    return "no engine answered"


def _query(params: dict) -> str:
    return "?" + "&".join(f"{key}={percent_encode(str(value))}" for key, value in params.items()) if params else ""


def _path(template: str, *names: str, **params) -> str:
    """An API path with its names quoted as the SDK quotes them (`/` and `:` kept: image refs)."""
    return template.format(*(quote(name, safe="/:") for name in names)) + _query(params)


class LocalEngine:
    """The local engine on a unix socket, without the SDK. `socket_path` None: DOCKER_HOST's
    (or the default) socket. Connecting pings the engine, so an unreachable engine fails
    before any state changes, as the SDK adapter's client does."""

    def __init__(self, socket_path: str | None = None, address: str | None = None) -> None:
        if socket_path is None:
            point = local_endpoint()
            if point.kind != UNIX:
                raise ValueError("LocalEngine serves a unix socket only")
            socket_path, address = point.address, address or point.display
        self.socket_path = socket_path
        self.address = address or f"unix://{socket_path}"
        self._sdk = None
        try:
            self._request("GET", "/_ping")
        except EngineError:  # something answers on the socket, but not an engine
            raise unreachable(self.address, "no engine answered") from None

    @classmethod
    def from_environment(cls) -> "LocalEngine":
        return cls()

    def close(self) -> None:
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None

    # -- HTTP ----------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = (),
                 timeout: float | None = API_TIMEOUT_SECONDS) -> tuple[int, bytes]:
        """(status, body) of one request on a fresh connection. An error status not in `ok`
        (2xx and 304 always are) raises EngineError; the socket failing raises DockerUnavailable."""
        connection = _UnixConnection(self.socket_path, timeout)
        headers = {"Host": "docker"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except OSError as error:
            raise unreachable(self.address, _reason(error)) from None
        except http.client.HTTPException as error:
            raise unreachable(self.address, f"no engine answered ({type(error).__name__})") from None
        finally:
            connection.close()
        status = response.status
        if status < 300 or status == 304 or status in ok:
            return status, data
        raise EngineError(status, method, path, _explanation(data))

    def _json(self, method: str, path: str, body: dict | None = None, **kwargs):
        _, data = self._request(method, path, body, **kwargs)
        return json.loads(data) if data else None

    def _sdk_engine(self):
        """The SDK adapter on the same engine, for what this one leaves to it (created once)."""
        if self._sdk is None:
            from paas_svc.engine.sdk import DockerEngine

            self._sdk = DockerEngine(f"unix://{self.socket_path}", address=self.address)
        return self._sdk

    # -- engine ----------------------------------------------------------------------

    def info(self) -> dict:
        return self._json("GET", "/info")

    def server_time(self) -> str:
        """The engine's clock (RFC 3339), for the clock-skew check of `doctor`."""
        return self.info().get("SystemTime", "")

    def cpu_count(self) -> int:
        """CPUs the engine's host has (the most a container's --cpus may ask for)."""
        return int(self.info().get("NCPU") or 1)

    def volume_sizes(self) -> dict[str, int]:
        """Bytes used per volume, from ONE `docker system df` request (-1 when the engine does not know)."""
        volumes = self._json("GET", "/system/df").get("Volumes") or []
        return {volume["Name"]: int((volume.get("UsageData") or {}).get("Size", -1)) for volume in volumes}

    # -- network, volumes, images -------------------------------------------------

    def ensure_network(self, labels: dict[str, str], name: str = NETWORK_NAME) -> None:
        if self.network_exists(name):
            return
        status, data = self._request("POST", "/networks/create", {
            "Name": name, "Driver": "bridge", "Labels": labels, "CheckDuplicate": True,
        }, ok=ANY_ERROR)
        if status >= 400 and status != 409:  # 409: another process created it first
            raise ProvisioningFailed(f"Could not create the network {name}: {_explanation(data)}")

    def network_exists(self, name: str = NETWORK_NAME) -> bool:
        return self.network_labels(name) is not None

    def network_labels(self, name: str) -> dict[str, str] | None:
        """The labels of the network named exactly `name` (None: there is none)."""
        found = self._json("GET", _path("/networks", filters=json.dumps({"name": [name]})))
        return next(((n.get("Labels") or {}) for n in found if n["Name"] == name), None)

    def remove_network(self, name: str) -> bool:
        """False when there is no such network; Conflict while containers are attached to it."""
        status, data = self._request("DELETE", _path("/networks/{}", name), ok=ANY_ERROR)
        if status == 404:
            return False
        if status >= 400:
            raise Conflict(f"Could not remove the network {name}: {_explanation(data)}")
        return True

    def ensure_volume(self, name: str, labels: dict[str, str]) -> None:
        """Creates the volume, or keeps the existing one of that name (the engine call is idempotent)."""
        self._request("POST", "/volumes/create", {"Name": name, "Driver": "local", "Labels": labels})

    def volume_exists(self, name: str) -> bool:
        status, _ = self._request("GET", _path("/volumes/{}", name), ok=(404,))
        return status != 404

    def remove_volume(self, name: str) -> bool:
        # No force: docker-py's remove_volume(force=True) never sends it, and with it the engine
        # answers 204 for a missing volume, which must stay False.
        status, data = self._request("DELETE", _path("/volumes/{}", name), ok=ANY_ERROR)
        if status == 404:
            return False
        if status >= 400:
            raise Conflict(f"Could not remove volume {name}: {_explanation(data)}")
        return True

    def list_volumes(self, label_filters: list[str]) -> list[dict]:
        return self._json("GET", _path("/volumes", filters=json.dumps({"label": label_filters}))).get("Volumes") or []

    def image_present(self, image: str) -> bool:
        status, _ = self._request("GET", _path("/images/{}/json", image), ok=(404,))
        return status != 404

    def pull(self, image: str, on_progress: Callable[[PullProgress], None]) -> None:
        # The SDK adds the registry credentials of ~/.docker/config.json (and its helpers).
        self._sdk_engine().pull(image, on_progress)

    # -- containers ---------------------------------------------------------------

    def create_container(self, spec: ContainerSpec) -> str:
        """The same request the SDK adapter makes (docker-py's create_container)."""
        host_config: dict = {
            "PortBindings": {f"{port}/tcp": [{"HostIp": spec.publish_ip, "HostPort": str(host_port)}]
                             for port, host_port in spec.port_bindings.items()},
            "Mounts": [{"Target": spec.volume_path, "Source": spec.volume, "Type": "volume", "ReadOnly": False}],
            "RestartPolicy": {"Name": spec.restart_policy},
            "NetworkMode": spec.network,
        }
        if spec.memory_bytes is not None:
            host_config["Memory"] = spec.memory_bytes
        if spec.cpus:
            host_config["NanoCpus"] = int(round(spec.cpus * 1e9))
        config = {
            "Hostname": spec.hostname,
            "ExposedPorts": {f"{port}/tcp": {} for port in spec.port_bindings},
            "Tty": False, "OpenStdin": False, "StdinOnce": False,
            "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "Env": [f"{key}={value}" for key, value in spec.environment.items()],
            "Cmd": spec.command,
            "Image": spec.image,
            "NetworkDisabled": False,
            "HostConfig": host_config,
            "Labels": spec.labels,
        }
        status, data = self._request("POST", _path("/containers/create", name=spec.name),
                                     {key: value for key, value in config.items() if value is not None},
                                     ok=ANY_ERROR)
        if status == 409:
            raise Conflict(f"A container named {spec.name} already exists.",
                           hint="Run `paas doctor` to see how it relates to the state.")
        if status >= 400:
            raise ProvisioningFailed(f"Could not create container {spec.name}: {_explanation(data)}")
        prepare_created(self, spec)
        return json.loads(data)["Id"]

    def start(self, name: str) -> None:
        status, data = self._request("POST", _path("/containers/{}/start", name), ok=ANY_ERROR)
        if status < 400:
            return
        explanation = _explanation(data)
        if "port is already allocated" in explanation or "address already in use" in explanation:
            raise ProvisioningFailed(
                f"Could not start {name}: its host port is already taken by another process.",
                hint="Free the port, or remove the service and add it again with another --port.",
            )
        raise ProvisioningFailed(f"Could not start {name}: {explanation}")

    def stop(self, name: str, timeout: int = 10) -> None:
        # The HTTP timeout covers the engine's own wait, as the SDK's does.
        self._request("POST", _path("/containers/{}/stop", name, t=timeout), ok=(404,),
                      timeout=API_TIMEOUT_SECONDS + timeout)

    def restart(self, name: str, timeout: int = 10) -> None:
        self._request("POST", _path("/containers/{}/restart", name, t=timeout), timeout=API_TIMEOUT_SECONDS + timeout)

    def remove_container(self, name: str) -> bool:
        # v=1 removes the container's ANONYMOUS volumes (e.g. mongo:7's /data/configdb);
        # named volumes such as the service's data volume are never removed by it.
        status, _ = self._request("DELETE", _path("/containers/{}", name, v=1, force=1), ok=(404,))
        return status != 404

    def inspect_container(self, name: str) -> ContainerView | None:
        document = self._inspect(name)
        return view_from_inspect(document) if document is not None else None

    def _inspect(self, name: str) -> dict | None:
        status, data = self._request("GET", _path("/containers/{}/json", name), ok=(404,))
        return None if status == 404 else json.loads(data)

    def logs_tail(self, name: str, lines: int) -> str:
        document = self._inspect(name)
        if document is None:
            return ""
        status, data = self._request("GET", _path("/containers/{}/logs", name, stderr=1, stdout=1, timestamps=0,
                                                  follow=0, tail=lines), ok=(404,))
        if status == 404:
            return ""
        if not (document.get("Config") or {}).get("Tty"):
            data = demultiplex(data)
        return data.decode("utf-8", errors="replace")

    def stream_logs(self, name: str, follow: bool, tail: int | str) -> Iterator[bytes]:
        return self._sdk_engine().stream_logs(name, follow, tail)

    def list_containers(self, label_filters: list[str]) -> list[ContainerView]:
        items = self._json("GET", _path("/containers/json", all=1, filters=json.dumps({"label": label_filters})))
        return [view_from_list_item(item) for item in items]

    def container_stats(self, name: str) -> dict | None:
        """One stats sample (with the previous one, for CPU use); None when the container is gone."""
        status, data = self._request("GET", _path("/containers/{}/stats", name, stream=0), ok=(404,))
        return None if status == 404 else json.loads(data)

    # -- exec, archives, throwaway containers: the SDK adapter -------------------------

    def exec_capture(self, name: str, command: list[str], environment: dict[str, str] | None = None) -> ExecResult:
        return self._sdk_engine().exec_capture(name, command, environment)

    def exec_stream(self, name: str, command: list[str], sink: BinaryIO, environment: dict[str, str] | None = None) -> ExecResult:
        return self._sdk_engine().exec_stream(name, command, sink, environment)

    def exec_stdin(self, name: str, command: list[str], source: BinaryIO, environment: dict[str, str] | None = None) -> ExecResult:
        return self._sdk_engine().exec_stdin(name, command, source, environment)

    def get_archive(self, name: str, path: str) -> Iterator[bytes]:
        return self._sdk_engine().get_archive(name, path)

    def put_archive(self, name: str, path: str, data: BinaryIO | bytes) -> None:
        self._sdk_engine().put_archive(name, path, data)

    def run_once(self, image: str, command: list[str], entrypoint: list[str] | None, labels: dict[str, str],
                 timeout: float = 60.0) -> ExecResult:
        return self._sdk_engine().run_once(image, command, entrypoint, labels, timeout)


def _explanation(data: bytes) -> str:
    """The engine's error message (`{"message": ...}`), else its raw text, as the SDK reads it."""
    try:
        return str(json.loads(data)["message"])
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", errors="replace").strip()


def demultiplex(data: bytes) -> bytes:
    """The payloads of a non-TTY container's multiplexed stream (8-byte headers: stream id,
    three zero bytes, big-endian length), stdout and stderr in the order they came."""
    out, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at + 4:at + 8], "big")
        out.append(data[at + 8:at + 8 + size])
        at += 8 + size
    return b"".join(out)
