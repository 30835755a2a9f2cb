"""SSH local forwards with the OpenSSH client: a remote engine's socket to a local unix socket
(how paas talks to ssh:// targets), and a TCP port to a service on a 127.0.0.1-only remote
host (`paas tunnel`). Host keys are checked strictly; BatchMode never prompts."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time

from paas_svc.errors import DockerUnavailable

CONNECT_TIMEOUT_SECONDS = 15
_open: dict[tuple, tuple[subprocess.Popen, str]] = {}


def ssh_command(user: str, host: str, port: int, key: str | None, known_hosts: str | None) -> list[str]:
    command = ["ssh", "-N", "-p", str(port), "-l", user,
               "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ExitOnForwardFailure=yes",
               "-o", f"ConnectTimeout={CONNECT_TIMEOUT_SECONDS}", "-o", "ServerAliveInterval=15"]
    if key:
        command += ["-i", key, "-o", "IdentitiesOnly=yes"]
    if known_hosts:
        command += ["-o", f"UserKnownHostsFile={known_hosts}"]
    return command


def forward_socket(user: str, host: str, port: int, remote_socket: str, key: str | None, known_hosts: str | None) -> str:
    """A local unix socket forwarded to `remote_socket` on the host (one per process and host)."""
    wanted = (user, host, port, remote_socket)
    if wanted in _open and _open[wanted][0].poll() is None:
        return _open[wanted][1]
    folder = tempfile.mkdtemp(prefix="paas-ssh-")  # 0700: only we can use the forwarded engine
    local = os.path.join(folder, "docker.sock")
    command = ssh_command(user, host, port, key, known_hosts) + ["-L", f"{local}:{remote_socket}", "--", host]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)  # Ctrl-C in the terminal is ours to handle, not ssh's
    _wait_for(process, lambda: os.path.exists(local), f"ssh://{user}@{host}:{port}", folder)
    _open[wanted] = (process, local)
    return local


def forward_port(user: str, host: str, port: int, key: str | None, known_hosts: str | None,
                 local_port: int, remote_host: str, remote_port: int, keep: bool = False) -> subprocess.Popen:
    """127.0.0.1:local_port -> remote_host:remote_port as seen from the ssh host (for `paas tunnel`)."""
    command = ssh_command(user, host, port, key, known_hosts) + [
        "-L", f"127.0.0.1:{local_port}:{remote_host}:{remote_port}", "--", host]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening() -> bool:
        import socket

        with socket.socket() as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", local_port)) == 0

    _wait_for(process, listening, f"ssh://{user}@{host}:{port}", None)
    if keep:  # closed when the process exits
        _open[("port", host, port, local_port)] = (process, "")
    return process


def _wait_for(process: subprocess.Popen, ready, address: str, folder: str | None) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT_SECONDS + 5
    interval = 0.01
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process, folder)
            error = (process.stderr.read() if process.stderr else b"").decode(errors="replace").strip()
            raise DockerUnavailable(f"Cannot open an ssh forward to {address}: {error.splitlines()[-1] if error else 'no answer'}.",
                                    hint="Check that `ssh` to that host works without a prompt (key, known_hosts) "
                                         "and that the user may use the Docker socket there.")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


def _stop(process: subprocess.Popen, folder: str | None) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


@atexit.register
def close_all() -> None:
    while _open:
        _, (process, local) = _open.popitem()
        _stop(process, os.path.dirname(local) if local else None)
