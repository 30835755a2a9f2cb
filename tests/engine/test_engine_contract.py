"""One contract, two adapters: the same engine-level cases run against the SDK adapter
(paas_svc.engine.sdk.DockerEngine) and the raw local-socket adapter (paas_svc.engine.local.
LocalEngine) on the real engine, error mapping included, and both must create the same
container from the same spec. Plus: `svc add` of a present image never imports the SDK.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile

import pytest

from paas_svc.engine.protocol import ContainerSpec
from paas_svc.errors import Conflict, DockerUnavailable, ProvisioningFailed
from tests.support.cli import PAAS_BIN
from tests.support.engine import sweep
from tests.support.images import REDIS_IMAGE

ADAPTERS = ["sdk", "local"]


def open_adapter(kind: str):
    if kind == "sdk":
        from paas_svc.engine.sdk import DockerEngine

        return DockerEngine()
    from paas_svc.engine.local import LocalEngine

    return LocalEngine()


@pytest.fixture
def label(docker_client):
    """A label of this test's own; everything carrying it is swept afterwards."""
    value = f"paas.profile=contract-{secrets.token_hex(4)}"
    yield value
    sweep(docker_client, value)
    # A container created here without ensure_volume first made its named volume implicitly,
    # without the label: removed by name (all of this file's tests run on one worker).
    for volume in docker_client.volumes.list(filters={"dangling": True}):
        if volume.name.startswith("paas-contract"):
            volume.remove(force=True)


@pytest.fixture(params=ADAPTERS)
def adapter(request, docker_client):
    engine = open_adapter(request.param)
    yield engine
    engine.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_spec(name: str, label: str, host_port: int, **extra) -> ContainerSpec:
    key, value = label.split("=", 1)
    return ContainerSpec(
        name=name, image=REDIS_IMAGE, command=["redis-server", "--appendonly", "yes"],
        environment={"A": "1", "B": "two words"}, labels={key: value, "paas.managed": "true"},
        volume=name, volume_path="/data", port_bindings={6379: host_port}, **extra)


def unique(prefix: str = "paas-contract") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


# -- the contract -----------------------------------------------------------------------------

def test_network_is_ensured_idempotently(adapter):
    adapter.ensure_network({"paas.managed": "true"})
    adapter.ensure_network({"paas.managed": "true"})  # exists: no error, no second network
    assert adapter.network_exists()


def test_a_named_network_is_made_with_its_labels_found_and_removed(adapter, label, docker_client):
    """An isolated environment's network: created with labels, looked up by its exact name (the
    engine's name filter also matches parts of names), refused removal while in use."""
    key, value = label.split("=", 1)
    name = unique("paas-contract.net")
    assert adapter.network_labels(name) is None and not adapter.network_exists(name)
    adapter.ensure_network({key: value, "paas.managed": "true"}, name)
    adapter.ensure_network({key: value, "paas.managed": "true"}, name)  # exists: no error, no second network
    assert adapter.network_labels(name) == {key: value, "paas.managed": "true"}
    assert adapter.network_labels(name[:-1]) is None  # a prefix is not the network
    assert len(docker_client.networks.list(names=[name])) == 1
    user = docker_client.containers.run(REDIS_IMAGE, name=unique(), network=name, detach=True, labels={key: value})
    try:
        with pytest.raises(Conflict, match=name):
            adapter.remove_network(name)
    finally:
        user.remove(force=True, v=True)
    assert adapter.remove_network(name) is True
    assert adapter.remove_network(name) is False
    assert adapter.network_labels(name) is None


def test_volume_lifecycle_and_missing_volume(adapter, label, docker_client):
    name = unique()
    key, value = label.split("=", 1)
    assert adapter.volume_exists(name) is False
    assert adapter.remove_volume(name) is False  # missing: False, not an error
    adapter.ensure_volume(name, {key: value})
    adapter.ensure_volume(name, {key: value})  # idempotent
    assert adapter.volume_exists(name) is True
    assert [v["Name"] for v in adapter.list_volumes([label])] == [name]
    assert docker_client.volumes.get(name).attrs["Labels"][key] == value
    assert adapter.remove_volume(name) is True
    assert adapter.volume_exists(name) is False


def test_removing_a_volume_in_use_is_a_conflict(adapter, label):
    name = unique()
    adapter.ensure_volume(name, dict([label.split("=", 1)]))
    try:
        adapter.create_container(redis_spec(name, label, free_port()))
        with pytest.raises(Conflict, match=f"Could not remove volume {name}: .*in use"):
            adapter.remove_volume(name)
    finally:
        adapter.remove_container(name)
        adapter.remove_volume(name)


def test_image_presence(adapter):
    assert adapter.image_present(REDIS_IMAGE) is True
    assert adapter.image_present("paas-test/no-such-image:0") is False


def test_container_lifecycle(adapter, label):
    name, port = unique(), free_port()
    adapter.ensure_network({"paas.managed": "true"})
    adapter.ensure_volume(name, dict([label.split("=", 1)]))
    container_id = adapter.create_container(redis_spec(name, label, port, memory_bytes=64 * 1024 * 1024, cpus=0.5))
    try:
        assert len(container_id) == 64
        view = adapter.inspect_container(name)
        assert (view.name, view.state, view.image) == (name, "created", REDIS_IMAGE)
        assert view.ports == {6379: ("127.0.0.1", port)}
        assert (view.memory_limit, view.nano_cpus) == (64 * 1024 * 1024, 500_000_000)
        assert view.labels["paas.managed"] == "true"

        adapter.start(name)
        adapter.start(name)  # already running: no error (304)
        assert adapter.inspect_container(name).running
        [listed] = adapter.list_containers([label])
        assert (listed.name, listed.state, listed.ports) == (name, "running", {6379: ("127.0.0.1", port)})

        assert "Ready to accept connections" in _wait_for_log(adapter, name)
        logs = adapter.logs_tail(name, 5)
        assert len(logs.rstrip().splitlines()) <= 5 and "\x01\x00\x00\x00" not in logs  # demultiplexed

        adapter.stop(name, timeout=5)
        stopped = adapter.inspect_container(name)
        assert stopped.state == "exited" and stopped.exit_code == 0
        adapter.stop(name, timeout=5)  # already stopped: no error
        adapter.restart(name, timeout=5)
        assert adapter.inspect_container(name).running
        assert adapter.container_stats(name)["id"] == container_id
        result = adapter.exec_capture(name, ["sh", "-c", "echo out; echo err >&2; exit 3"])  # the SDK adapter's, for LocalEngine
        assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    finally:
        assert adapter.remove_container(name) is True
        adapter.remove_volume(name)
    assert adapter.inspect_container(name) is None
    assert adapter.list_containers([label]) == []


def _wait_for_log(adapter, name: str) -> str:
    import time

    deadline = time.monotonic() + 30
    while True:
        text = adapter.logs_tail(name, 50)
        if "Ready to accept connections" in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_missing_container(adapter):
    name = unique("paas-contract-missing")
    assert adapter.inspect_container(name) is None
    assert adapter.remove_container(name) is False
    adapter.stop(name)  # nothing to stop: no error
    assert adapter.logs_tail(name, 10) == ""
    assert adapter.container_stats(name) is None
    with pytest.raises(ProvisioningFailed, match=f"Could not start {name}: No such container: {name}"):
        adapter.start(name)


def test_name_conflict(adapter, label):
    name = unique()
    adapter.create_container(redis_spec(name, label, free_port()))
    with pytest.raises(Conflict) as raised:
        adapter.create_container(redis_spec(name, label, free_port()))
    assert raised.value.message == f"A container named {name} already exists."
    assert raised.value.hint == "Run `paas doctor` to see how it relates to the state."


def test_create_with_a_missing_image_fails_provisioning(adapter, label):
    name = unique()
    spec = redis_spec(name, label, free_port())
    with pytest.raises(ProvisioningFailed, match=f"Could not create container {name}: .*no-such-image"):
        adapter.create_container(dataclasses.replace(spec, image="paas-test/no-such-image:0"))


def test_a_taken_host_port_is_named(adapter, label):
    name = unique()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        adapter.create_container(redis_spec(name, label, holder.getsockname()[1]))
        with pytest.raises(ProvisioningFailed) as raised:
            adapter.start(name)
    assert raised.value.message == f"Could not start {name}: its host port is already taken by another process."


def test_both_adapters_create_the_same_container(label, docker_client):
    """The raw adapter sends what docker-py sends: same config and host config on the engine."""
    shown = {}
    for kind in ADAPTERS:
        name = unique()
        engine = open_adapter(kind)
        engine.ensure_volume(name, dict([label.split("=", 1)]))
        engine.create_container(redis_spec(name, label, free_port(), hostname="fixed-host",
                                           memory_bytes=128 * 1024 * 1024, cpus=1.5))
        attrs = docker_client.api.inspect_container(name)
        config, host = attrs["Config"], attrs["HostConfig"]
        shown[kind] = {
            "config": {k: config.get(k) for k in ("Hostname", "Env", "Cmd", "Image", "ExposedPorts", "Labels", "Tty",
                                                  "OpenStdin", "AttachStdout", "Entrypoint", "User", "WorkingDir")},
            "host": {k: host.get(k) for k in ("NetworkMode", "RestartPolicy", "Memory", "NanoCpus", "Mounts", "Binds",
                                              "PublishAllPorts", "Privileged", "Init", "AutoRemove")},
            "ports": {k: [{**b, "HostPort": "X"} for b in v] for k, v in host["PortBindings"].items()},
            "mounts": [(m["Type"], m["Destination"], m["RW"]) for m in attrs["Mounts"]],
        }
        for mount in shown[kind]["host"]["Mounts"]:
            mount["Source"] = "X"  # each its own volume
        engine.remove_container(name)
        engine.remove_volume(name)
        engine.close()
    assert shown["sdk"] == shown["local"]
    assert {"A=1", "B=two words"} <= set(shown["local"]["config"]["Env"])


# -- an engine that does not answer ------------------------------------------------------------

def _unreachable(kind: str, monkeypatch, docker_host: str) -> DockerUnavailable:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    with pytest.raises(DockerUnavailable) as raised:
        open_adapter(kind)
    return raised.value


@pytest.mark.parametrize("kind", ADAPTERS)
def test_no_socket_is_unreachable_with_the_same_words(kind, monkeypatch, docker_client):
    error = _unreachable(kind, monkeypatch, "unix:///nonexistent/docker.sock")
    assert error.message == "Cannot reach the Docker engine at unix:///nonexistent/docker.sock: no engine answered."
    assert error.hint == "Is dockerd running? Start it, or point DOCKER_HOST at a running engine."


@pytest.mark.parametrize("kind", ADAPTERS)
def test_a_socket_nobody_listens_on_is_refused(kind, monkeypatch, docker_client):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "dead.sock")
        with socket.socket(socket.AF_UNIX) as bound:  # bound, never listening: connect is refused
            bound.bind(path)
            error = _unreachable(kind, monkeypatch, f"unix://{path}")
    assert error.message == f"Cannot reach the Docker engine at unix://{path}: connection refused."


def test_local_engine_maps_an_engine_lost_mid_command(docker_client, tmp_path):
    """After the ping, a socket that goes away is DockerUnavailable (the SDK adapter would
    let requests' ConnectionError through as an internal error)."""
    import threading

    from paas_svc.engine.local import LocalEngine

    path = str(tmp_path / "once.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()

    def answer_one_ping():
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nApi-Version: 1.41\r\n\r\nOK")
        connection.close()
        server.close()
        os.unlink(path)

    thread = threading.Thread(target=answer_one_ping)
    thread.start()
    engine = LocalEngine(path, address=f"unix://{path}")
    thread.join()
    with pytest.raises(DockerUnavailable, match=f"Cannot reach the Docker engine at unix://{path}: no engine answered"):
        engine.inspect_container("anything")


# -- which adapter, and what `svc add` imports ---------------------------------------------------

def test_the_local_unix_engine_gets_the_raw_adapter_and_others_the_sdk(monkeypatch, isolated_home, docker_client):
    from paas_svc.engine.local import LocalEngine
    from paas_svc.engine.sdk import DockerEngine
    from paas_svc.engine.targets import local_target, open_engine

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert type(open_engine(isolated_home, local_target())) is LocalEngine
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    assert type(open_engine(isolated_home, local_target())) is LocalEngine
    monkeypatch.setenv("PAAS_ENGINE_CLIENT", "sdk")
    assert type(open_engine(isolated_home, local_target())) is DockerEngine


def test_svc_add_of_a_present_image_imports_neither_docker_nor_requests(tmp_path, docker_client):
    """The whole `svc add` process (CLI, add, readiness) with the image already on the host."""
    home = tmp_path / "home"
    report = tmp_path / "modules.json"
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({str(report)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
            "from paas_svc.cli.main import main\n"
            "main()\n")
    environment = {**os.environ, "PAAS_HOME": str(home)}
    environment.pop("DOCKER_HOST", None)
    environment.pop("PAAS_ENGINE_CLIENT", None)
    try:
        completed = subprocess.run([sys.executable, "-c", code, "svc", "add", "cache", "--template", "redis-7",
                                    "--image", REDIS_IMAGE], env=environment, capture_output=True, text=True, timeout=120)
        assert completed.returncode == 0, completed.stderr
        modules = json.loads(report.read_text())
        assert "paas_svc.engine.local" in modules
        assert [m for m in modules if m.split(".")[0] in ("docker", "requests", "urllib3") or m == "paas_svc.engine.sdk"] == []
    finally:
        subprocess.run([PAAS_BIN, "svc", "rm", "cache", "--purge", "--yes", "--no-backup"], env=environment,
                       capture_output=True, timeout=120)
