"""A developer's way to a service on a remote target that publishes on 127.0.0.1 only:
an ssh local forward from this machine's 127.0.0.1 to the service's port on that host."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from paas_svc.dsn import publish_host
from paas_svc.errors import InvalidInput
from paas_svc.state.models import ServiceRecord
from paas_svc.usecases.reveal import connection_string, tls_view


@dataclass
class Tunnel:
    process: subprocess.Popen
    local_port: int
    dsn: str

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)


def open_tunnel(store, vault, home: Path, service: ServiceRecord, local_port: int | None = None) -> Tunnel:
    from paas_svc.dsn import is_loopback
    from paas_svc.engine.ssh_forward import forward_port
    from paas_svc.engine.status import parse_docker_host
    from paas_svc.engine.targets import get_target, ssh_files

    target = get_target(store, service.target)
    if target.scheme != "ssh":
        raise InvalidInput(f"{service.slug} runs on {target.name} ({target.docker_host}); a tunnel needs an ssh:// target.",
                           hint="Reach it on its publish address, or add the host again as ssh://user@host.")
    if service.host_port is None:
        raise InvalidInput(f"{service.slug} has no published port.")
    remote_host = publish_host(service.spec, target.name, lambda _: target.publish_address)
    remote_host = "127.0.0.1" if is_loopback(remote_host) else remote_host
    _, host, port = parse_docker_host(target.docker_host)
    user = target.docker_host.split("://", 1)[1].split("@", 1)[0]
    key, known = ssh_files(home, target)
    local_port = local_port or _free_port()
    process = forward_port(user, host, port, key, known, local_port, remote_host, service.host_port)
    moved = dataclasses.replace(service, host_ports={**service.host_ports, service.container_port: local_port})
    dsn = connection_string(moved, vault.credentials(service), False, "127.0.0.1", tls_view(vault, service, False))
    store.audit("reveal-dsn", service.project, service.env, service.slug, f"view=tunnel port={local_port}")
    return Tunnel(process, local_port, dsn)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
