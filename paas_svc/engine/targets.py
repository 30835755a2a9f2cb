"""Targets: the Docker engines (and Swarm managers) services run on.

`local` is built in: the engine DOCKER_HOST names, else the local socket, publishing on
127.0.0.1. Others are added with `paas target add` and reached over unix://, tcp:// with
TLS (plain tcp only when the user says --insecure) or ssh://. TLS and ssh files are copied
under PAAS_HOME/targets/NAME/ (0700 folder, 0600 files) and never printed.

ssh: we run the OpenSSH client binary (`ssh -L local.sock:/var/run/docker.sock`), not
paramiko: the user's ssh config, agent and known_hosts apply as they do for `ssh` itself,
host keys are checked strictly (paramiko as the Docker SDK drives it accepts unknown host
keys with a warning), the remote side needs no `docker` CLI (`docker system dial-stdio`),
and the forwarded socket serves both the SDK and the fast raw status path.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

from paas_svc.dsn import is_loopback
from paas_svc.engine.status import UNIX, Endpoint, engine_address, local_endpoint, parse_docker_host
from paas_svc.errors import Conflict, InvalidInput, NotFound
from paas_svc.naming import validate_name

LOCAL = "local"
TARGETS_DIR = "targets"
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
SSH_KEY_FILE, KNOWN_HOSTS_FILE = "ssh_key", "known_hosts"
REMOTE_SOCKET = "/var/run/docker.sock"


class Target(NamedTuple):
    name: str
    docker_host: str
    publish_address: str  # the host name apps and the host-view DSN use
    insecure: bool = False  # plain tcp accepted explicitly
    swarm: bool = False  # its engine is a Swarm manager
    created_at: str = ""

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL

    @property
    def scheme(self) -> str:
        return self.docker_host.split("://", 1)[0]

    @property
    def kind(self) -> str:
        return "swarm" if self.swarm else "engine"

    @property
    def bind_address(self) -> str:
        """Where published ports listen: loopback only when the publish address is loopback."""
        return "127.0.0.1" if is_loopback(self.publish_address) else "0.0.0.0"


def local_target() -> Target:
    return Target(LOCAL, engine_address(), "127.0.0.1")


def list_targets(store) -> list[Target]:
    rows = [Target(name, host, publish, bool(insecure), bool(swarm), created)
            for name, host, publish, insecure, swarm, created in store.list_target_rows()]
    return [local_target(), *rows]


def get_target(store, name: str) -> Target:
    if name == LOCAL:
        return local_target()
    for target in list_targets(store):
        if target.name == name:
            return target
    known = ", ".join(t.name for t in list_targets(store))
    raise NotFound(f"Unknown target {name!r}.", hint=f"Known targets: {known}. Add one with `paas target add NAME --docker-host URL`.")


def target_dir(home: Path, name: str) -> Path:
    return home / TARGETS_DIR / name


def tls_files(home: Path, target: Target) -> tuple[str, str, str] | None:
    folder = target_dir(home, target.name)
    paths = tuple(str(folder / name) for name in TLS_FILES)
    return paths if (folder / TLS_FILES[0]).exists() else None


def ssh_files(home: Path, target: Target) -> tuple[str | None, str | None]:
    folder = target_dir(home, target.name)
    key, known = folder / SSH_KEY_FILE, folder / KNOWN_HOSTS_FILE
    return (str(key) if key.exists() else None, str(known) if known.exists() else None)


# -- add, rm ----------------------------------------------------------------------------------

class AddedTarget(NamedTuple):
    target: Target
    warnings: list[str]
    engine_version: str


def add_target(store, home: Path, name: str, docker_host: str, publish_address: str | None = None,
               tls_ca: Path | None = None, tls_cert: Path | None = None, tls_key: Path | None = None,
               insecure: bool = False, ssh_key: Path | None = None, known_hosts: Path | None = None) -> AddedTarget:
    """Check the URL and files, copy the files under PAAS_HOME, ask the engine (which must
    answer) whether it is a Swarm manager, and record the target."""
    from paas_svc.state.store import utc_now

    validate_name(name, "target name")
    if name == LOCAL:
        raise Conflict("`local` is the built-in target.")
    if any(t.name == name for t in list_targets(store)):
        raise Conflict(f"Target {name!r} already exists.", hint=f"See it with `paas target show {name}`.")
    try:
        scheme, host, _ = parse_docker_host(docker_host)
    except ValueError:
        raise InvalidInput(f"--docker-host {docker_host!r} is not a unix://, tcp:// or ssh://user@host[:port] URL.") from None
    tls = [tls_ca, tls_cert, tls_key]
    if scheme == "tcp":
        if any(tls) and not all(tls):
            raise InvalidInput("TLS needs all three of --tls-ca, --tls-cert and --tls-key.")
        if not any(tls) and not insecure:
            raise InvalidInput(f"{docker_host} without TLS would let anyone on that network run containers as root there.",
                               hint="Give --tls-ca/--tls-cert/--tls-key, or say --insecure for a network you trust (a test bridge).")
    elif any(tls):
        raise InvalidInput("--tls-ca/--tls-cert/--tls-key apply to tcp:// targets only.")
    if (ssh_key or known_hosts) and scheme != "ssh":
        raise InvalidInput("--ssh-key and --known-hosts apply to ssh:// targets only.")
    if scheme == "ssh" and "@" not in docker_host:
        raise InvalidInput("An ssh target names its user: ssh://user@host[:port].")
    for path in [*tls, ssh_key, known_hosts]:
        if path is not None and not Path(path).is_file():
            raise InvalidInput(f"{path} is not a readable file.")
    publish = publish_address or "127.0.0.1"
    target = Target(name, docker_host.rstrip("/"), publish, insecure and scheme == "tcp", False, utc_now())
    folder = target_dir(home, name)
    _copy_private(folder, dict(zip(TLS_FILES, tls)) if all(tls) else {})
    _copy_private(folder, {SSH_KEY_FILE: ssh_key, KNOWN_HOSTS_FILE: known_hosts})
    try:
        engine_info = probe_engine(home, target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    swarm = engine_info.get("Swarm") or {}
    target = target._replace(swarm=swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable")))
    store.insert_target_row(tuple(target))
    warnings = []
    if not is_loopback(publish):
        warnings.append(f"Services on {name} publish their ports on all of that host's addresses; "
                        f"anyone who can reach {publish} can try their passwords. Firewall them, or keep "
                        "--publish-address 127.0.0.1 and use `paas tunnel`.")
    if swarm.get("LocalNodeState") == "active" and not target.swarm:
        warnings.append(f"{docker_host} is a Swarm worker: services there are plain containers. Add the manager for Swarm services.")
    return AddedTarget(target, warnings, engine_info.get("ServerVersion", "?"))


def _copy_private(folder: Path, files: dict[str, Path | None]) -> None:
    import os

    wanted = {name: source for name, source in files.items() if source is not None}
    if not wanted:
        return
    folder.parent.mkdir(mode=0o700, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    for name, source in wanted.items():
        content = Path(source).read_bytes()
        destination = folder / name
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(destination, 0o600)


def remove_target(store, home: Path, name: str) -> None:
    if name == LOCAL:
        raise Conflict("`local` is the built-in target; it cannot be removed.")
    get_target(store, name)
    store.delete_target_row(name)  # refused while services or environments use it
    shutil.rmtree(target_dir(home, name), ignore_errors=True)


def set_environment_target(store, project: str, env: str, target_name: str) -> None:
    get_target(store, target_name)
    store.set_environment_target(project, env, target_name)


# -- reaching a target ----------------------------------------------------------------------

def endpoint(home: Path, target: Target) -> Endpoint:
    """The raw HTTP endpoint of the target's engine; an ssh target is forwarded to a local socket
    first (the forward lives until the process exits)."""
    if target.is_local:
        return local_endpoint()
    scheme, host, port = parse_docker_host(target.docker_host)
    if scheme == UNIX:
        return Endpoint(UNIX, host, None, target.docker_host)
    if scheme == "ssh":
        from paas_svc.engine.ssh_forward import forward_socket

        key, known = ssh_files(home, target)
        user = target.docker_host.split("://", 1)[1].split("@", 1)[0]
        socket_path = forward_socket(user, host, port, REMOTE_SOCKET, key, known)
        return Endpoint(UNIX, socket_path, None, target.docker_host)
    return Endpoint("tcp", (host, port), tls_files(home, target), target.docker_host)


def node_base_url(home: Path, target: Target, address: str) -> str | None:
    """The base URL of the engine of a Swarm node at `address`, reached as the target's manager
    is (same scheme, port and ssh key); None when the manager's scheme cannot reach another host."""
    scheme, _, port = parse_docker_host(target.docker_host)
    if scheme == "ssh":
        from paas_svc.engine.ssh_forward import forward_socket

        user = target.docker_host.split("://", 1)[1].split("@", 1)[0]
        key, known = ssh_files(home, target)
        return "unix://" + forward_socket(user, address, port, REMOTE_SOCKET, key, known)
    if scheme == "tcp":
        return f"tcp://{address}:{port}"
    return None


def probe_engine(home: Path, target: Target) -> dict:
    """GET /info on the target: it must answer (add refuses a target it cannot reach)."""
    from paas_svc.engine.status import get_json

    return get_json(endpoint(home, target), "/info")


ENGINE_CLIENT_VARIABLE = "PAAS_ENGINE_CLIENT"  # "sdk": the local engine through the SDK adapter too


def open_engine(home: Path, target: Target, store=None):
    """The engine adapter for the target. The local engine on a unix socket: LocalEngine (the
    Engine API on the socket, no SDK import); every other engine: the SDK adapter,
    DockerEngine, or SwarmEngine on a Swarm manager. PAAS_ENGINE_CLIENT=sdk keeps the local
    engine on the SDK adapter (the benchmark's before/after, and a way out)."""
    import os

    if target.is_local and os.environ.get(ENGINE_CLIENT_VARIABLE, "").lower() != "sdk" and _local_unix_socket():
        from paas_svc.engine.local import LocalEngine

        return LocalEngine()
    from paas_svc.engine.sdk import DockerEngine

    if target.is_local:
        return DockerEngine()
    point = endpoint(home, target)
    base_url = f"unix://{point.address}" if point.kind == UNIX else f"tcp://{point.address[0]}:{point.address[1]}"
    if target.swarm:
        from paas_svc.engine.swarm import SwarmEngine

        return SwarmEngine(target, base_url, point.tls, lambda name: _pinned_node(store, name),
                           lambda address: node_base_url(home, target, address))
    return DockerEngine(base_url, point.tls, address=target.docker_host)


def _local_unix_socket() -> bool:
    """Whether DOCKER_HOST (or its absence) names a unix socket; anything else (tcp, ssh, a
    malformed value) stays with the SDK adapter, which reports it as it always did."""
    from paas_svc.errors import DockerUnavailable

    try:
        return local_endpoint().kind == UNIX
    except DockerUnavailable:
        return False


def docker_cli_environment(home: Path, target: Target) -> dict[str, str]:
    """The variables that point the docker CLI at the target's engine (none for local)."""
    if target.is_local:
        return {}
    if target.swarm:
        raise InvalidInput(f"`svc connect` runs `docker exec` on one engine; {target.name} is a Swarm target.",
                           hint="Connect with your own client: `paas svc env SLUG` (or `paas tunnel`) gives the variables.")
    environment = {"DOCKER_HOST": target.docker_host}
    tls = tls_files(home, target)
    if tls is not None:
        environment.update(DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(target_dir(home, target.name)))
    return environment


_port_forwards: dict[tuple[str, int], int] = {}


def open_port_forward(home: Path, target: Target, remote_port: int) -> int:
    """A local port forwarded over ssh to the target host's 127.0.0.1:remote_port (closed at exit)."""
    from paas_svc.engine.ssh_forward import forward_port
    from paas_svc.errors import ProvisioningFailed

    if target.scheme != "ssh":
        raise ProvisioningFailed(f"Target {target.name} publishes on its own 127.0.0.1 and is not ssh://, so this machine cannot reach its ports.",
                                 hint="Add the target with --publish-address set to that host's address, or as ssh://.")
    if (target.name, remote_port) not in _port_forwards:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            local_port = sock.getsockname()[1]
        _, host, port = parse_docker_host(target.docker_host)
        key, known = ssh_files(home, target)
        forward_port(target.docker_host.split("://", 1)[1].split("@", 1)[0], host, port, key, known,
                     local_port, "127.0.0.1", remote_port, keep=True)
        _port_forwards[(target.name, remote_port)] = local_port
    return _port_forwards[(target.name, remote_port)]


def _pinned_node(store, resource: str) -> str | None:
    from paas_svc.errors import NotFound as Missing
    from paas_svc.naming import RESOURCE_PREFIX

    if store is None or not resource.startswith(RESOURCE_PREFIX):
        return None
    try:
        return store.get_service_by_id(resource[len(RESOURCE_PREFIX):]).node
    except Missing:
        return None
