"""Docker engines in containers ("nodes") for the multinode tier, as /work/shared/SWARM.md
describes: no --privileged (this VM lacks CAP_SYS_RESOURCE), vfs storage, the host's cgroup
tree mounted, a user-defined bridge network made by the test with fixed addresses. The
fixtures that share one node set across the tier are in tests/multinode/conftest.py.

Everything made here carries the label paas-test.multinode=<run id> and is removed at the
end of the session, also when a test fails.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import json
import os
import secrets
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NODE_IMAGE = "paas-test/node:1"
RUN_LABEL = "paas-test.multinode"
TLS_PORT, PLAIN_PORT = 2376, 2375


def docker(*args: str, input: bytes | None = None, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], input=input, capture_output=True, check=check, timeout=timeout)


@dataclass
class Node:
    name: str
    ip: str
    tls: bool
    ssh: bool

    @property
    def url(self) -> str:
        return f"tcp://{self.ip}:{TLS_PORT if self.tls else PLAIN_PORT}"

    def sh(self, command: str, check: bool = True, timeout: float = 600) -> str:
        result = docker("exec", self.name, "sh", "-c", command, check=False, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.name}: {command}: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode(errors="replace")

    def wait_engine(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while docker("exec", self.name, "docker", "info", check=False, timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                logs = docker("logs", "--tail", "30", self.name, check=False).stderr.decode(errors="replace")
                raise AssertionError(f"the engine in {self.name} did not answer in {timeout}s:\n{logs}")
            time.sleep(0.5)


@dataclass
class Cluster:
    run_id: str
    network: str
    subnet: ipaddress.IPv4Network
    workdir: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    certs: "Certificates | None" = None

    def ip(self, index: int) -> str:
        return str(self.subnet.network_address + 10 + index)

    def start_node(self, name: str, tls: bool = False, ssh_public_key: str | None = None) -> Node:
        node = Node(f"{name}-{self.run_id}", self.ip(len(self.nodes)), tls, ssh_public_key is not None)
        args = ["--host=unix:///var/run/docker.sock", "--storage-driver=vfs"]
        if tls:
            args += [f"--host=tcp://0.0.0.0:{TLS_PORT}", "--tlsverify", "--tlscacert=/certs/ca.pem",
                     "--tlscert=/certs/server.pem", "--tlskey=/certs/server-key.pem"]
        else:
            args += [f"--host=tcp://0.0.0.0:{PLAIN_PORT}"]
        docker("create", "--name", node.name, "--hostname", name, "--network", self.network, "--ip", node.ip,
               "--label", f"{RUN_LABEL}={self.run_id}",
               "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
               "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
               "--security-opt", "systempaths=unconfined",
               "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
               NODE_IMAGE, *args)
        files = {}
        if tls:
            files.update(self.certs.server_files(name, node.ip))
        if ssh_public_key:
            files["root/.ssh/authorized_keys"] = ssh_public_key.encode()
        if files:
            docker("cp", "-", f"{node.name}:/", input=_tar(files))
        docker("start", node.name)
        self.nodes[name] = node
        return node

    def load_flat_image(self, image: str, nodes: list[Node]) -> None:
        """The image as ONE layer (vfs copies the whole tree for every layer), under its own name."""
        config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
        changes = []
        for variable in config.get("Env") or []:
            changes += ["--change", f"ENV {variable}"]
        if config.get("Entrypoint"):
            changes += ["--change", f"ENTRYPOINT {json.dumps(config['Entrypoint'])}"]
        if config.get("Cmd"):
            changes += ["--change", f"CMD {json.dumps(config['Cmd'])}"]
        for port in config.get("ExposedPorts") or {}:
            changes += ["--change", f"EXPOSE {port}"]
        if config.get("WorkingDir"):
            changes += ["--change", f"WORKDIR {config['WorkingDir']}"]
        if config.get("User"):
            changes += ["--change", f"USER {config['User']}"]
        container = docker("create", "--label", f"{RUN_LABEL}={self.run_id}", image).stdout.decode().strip()
        try:
            archive = docker("export", container, timeout=300).stdout
        finally:
            docker("rm", "-f", "-v", container, check=False)  # -v: the image's VOLUME made an anonymous one
        from concurrent.futures import ThreadPoolExecutor

        def load(node: Node) -> None:
            docker("exec", "-i", node.name, "docker", "import", *changes, "-", image, input=archive, timeout=600)

        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(load, nodes))

    def stop(self) -> None:
        for node in self.nodes.values():
            docker("rm", "-f", "-v", node.name, check=False)
        docker("network", "rm", self.network, check=False)


@dataclass
class RemoteNode:
    """One engine reached as a remote target, over TLS and over ssh (fixture `remote_node`)."""
    cluster: Cluster
    node: Node
    ssh_key: Path
    known_hosts: Path

    @property
    def certs(self) -> "Certificates":
        return self.cluster.certs


@dataclass
class Swarm:
    """A 3-node Swarm: one manager, two workers (fixture `swarm`)."""
    cluster: Cluster
    manager: Node
    worker1: Node
    worker2: Node


def add_tls_target(paas, remote: RemoteNode, name: str = "prod"):
    """`paas target add NAME` for the remote node over TCP with TLS, published on its address."""
    certs = remote.certs
    result = paas("target", "add", name, "--docker-host", remote.node.url, "--publish-address", remote.node.ip,
                  "--tls-ca", str(certs.ca_file), "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file))
    assert result.exit_code == 0, result.output
    return result


def add_ssh_target(paas, remote: RemoteNode, name: str = "box", publish: str | None = None):
    """`paas target add NAME` for the remote node over ssh (its sshd, the key made for it)."""
    args = ["target", "add", name, "--docker-host", f"ssh://root@{remote.node.ip}",
            "--ssh-key", str(remote.ssh_key), "--known-hosts", str(remote.known_hosts)]
    if publish:
        args += ["--publish-address", publish]
    result = paas(*args)
    assert result.exit_code == 0, result.output
    return result


def make_cluster(workdir: Path) -> Cluster:
    """A bridge network on a free /24 of 10.213-250.x (fixed node addresses survive a node restart)."""
    run_id = secrets.token_hex(3)
    network = f"paas-multinode-{run_id}"
    for third in range(secrets.randbelow(200), 256):
        subnet = ipaddress.ip_network(f"10.213.{third}.0/24")
        made = docker("network", "create", "--driver", "bridge", "--subnet", str(subnet),
                      "--label", f"{RUN_LABEL}={run_id}", network, check=False)
        if made.returncode == 0:
            return Cluster(run_id, network, subnet, workdir)
    raise AssertionError("no free 10.213.x.0/24 subnet for the test network")


def sweep_stale() -> None:
    """Nodes and networks a crashed earlier session left behind."""
    ids = docker("ps", "-aq", "--filter", f"label={RUN_LABEL}", check=False).stdout.decode().split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)
    for network in docker("network", "ls", "-q", "--filter", f"label={RUN_LABEL}", check=False).stdout.decode().split():
        docker("network", "rm", network, check=False)


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o600
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# -- certificates (made by the test with the cryptography package) ------------------------------

class Certificates:
    def __init__(self, folder: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ec, self._oid = x509, hashes, ec, NameOID
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paas-test CA")])
        self._ca_name = name
        self._ca = self._build(name, self._ca_key.public_key(), ca=True)
        self.ca_file = self._write("ca.pem", self._pem(self._ca))
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = self._build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paas client")]), client_key.public_key(),
                             usage=x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
        self.cert_file = self._write("cert.pem", self._pem(client))
        self.key_file = self._write("key.pem", self._key_pem(client_key))

    def server_files(self, name: str, ip: str) -> dict[str, bytes]:
        x509 = self._x509
        key = self._ec.generate_private_key(self._ec.SECP256R1())
        sans = [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(ip))]
        cert = self._build(x509.Name([x509.NameAttribute(self._oid.COMMON_NAME, name)]), key.public_key(),
                           usage=x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, sans=sans)
        return {"certs/ca.pem": self._pem(self._ca), "certs/server.pem": self._pem(cert),
                "certs/server-key.pem": self._key_pem(key)}

    def _build(self, subject, public_key, ca: bool = False, usage=None, sans=None):
        x509 = self._x509
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self._ca_name if not ca else subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self._ca_key, self._hashes.SHA256())

    def _pem(self, cert) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        return cert.public_bytes(Encoding.PEM)

    def _key_pem(self, key) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())

    def _write(self, name: str, content: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(content)
        os.chmod(path, 0o600)
        return path


def ssh_keypair(folder: Path) -> tuple[Path, str]:
    """(private key file, public key line), made with ssh-keygen."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, (folder / "id_ed25519.pub").read_text().strip()


def known_hosts_for(node: Node, folder: Path) -> Path:
    """The node's host key (made when its sshd started), as a known_hosts file."""
    deadline = time.monotonic() + 60
    while True:
        line = node.sh("cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null || true").strip()
        if line:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{node.name}: sshd made no host key")
        time.sleep(0.3)
    path = folder / f"known_hosts-{node.name}"
    path.write_text(f"{node.ip} {' '.join(line.split()[:2])}\n")
    return path
