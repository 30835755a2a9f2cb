"""An add into an environment bound to another target is handed to that target's manager with
ALL its arguments (issue 19): `--memory`, `--cpus` and `--url-scheme` reach the container on a
remote engine, and the service spec of a Swarm, and the URL `svc dsn` prints. Two nodes (Docker
engines in containers, TLS with certificates made here): a plain engine, and a one-node Swarm.
They are shared by the tests of this module and removed at its end."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from tests.conftest import POSTGRES_IMAGE
from tests.nodes import Certificates, Cluster, Node, make_cluster

pytestmark = [pytest.mark.multinode, pytest.mark.docker]

MEMORY, CPUS, SCHEME = "256m", "0.5", "postgresql"  # postgres:// is the kind's default scheme
MEMORY_BYTES, NANO_CPUS = 256 * 1024 * 1024, 500_000_000


@dataclass
class Nodes:
    cluster: Cluster
    engine: Node  # a plain remote engine
    manager: Node  # the one node of a Swarm


@pytest.fixture(scope="module")
def nodes(docker_client, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("handoff-nodes")
    cluster = make_cluster(workdir)
    try:
        cluster.certs = Certificates(workdir / "certs")
        engine, manager = (cluster.start_node(name, tls=True) for name in ("far1", "mgr"))
        for node in (engine, manager):
            node.wait_engine()
        manager.sh(f"docker swarm init --advertise-addr {manager.ip}")
        cluster.load_flat_image(POSTGRES_IMAGE, [engine, manager])
        yield Nodes(cluster, engine, manager)
    finally:
        cluster.stop()


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def add_target(paas, cluster: Cluster, node: Node, name: str) -> str:
    """The target's kind as `target add` found it ("engine" or "swarm")."""
    certs = cluster.certs
    added = ok(paas("target", "add", name, "--docker-host", node.url, "--publish-address", node.ip,
                    "--tls-ca", str(certs.ca_file), "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                    "--json"))
    return json.loads(added.stdout)["kind"]


def add_limited_postgres(paas, env: str) -> None:
    """From the CLI's default (local) target's manager, into an environment bound elsewhere."""
    ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", env, "--image", POSTGRES_IMAGE,
            "--memory", MEMORY, "--cpus", CPUS, "--url-scheme", SCHEME))


def test_memory_cpus_and_url_scheme_reach_a_remote_engines_container(paas, nodes):
    assert add_target(paas, nodes.cluster, nodes.engine, "far") == "engine"
    ok(paas("env", "create", "live", "--target", "far"))
    add_limited_postgres(paas, "live")

    [container] = nodes.engine.sh("docker ps -q --filter label=paas.slug=db").split()
    host_config = json.loads(nodes.engine.sh(f"docker inspect --format '{{{{json .HostConfig}}}}' {container}"))
    dsn = ok(paas("svc", "dsn", "db", "--env", "live")).stdout.strip()
    assert (host_config["Memory"], host_config["NanoCpus"], dsn.split("://")[0]) == (MEMORY_BYTES, NANO_CPUS, SCHEME)
    assert f"@{nodes.engine.ip}:" in dsn, dsn


def test_memory_cpus_and_url_scheme_reach_a_swarm_service(paas, nodes):
    assert add_target(paas, nodes.cluster, nodes.manager, "cluster") == "swarm"
    ok(paas("env", "create", "prod", "--target", "cluster"))
    add_limited_postgres(paas, "prod")

    service = json.loads(ok(paas("svc", "show", "db", "--env", "prod", "--json")).stdout)["container"]
    spec = json.loads(nodes.manager.sh(f"docker service inspect {service}"))[0]["Spec"]
    limits = (spec["TaskTemplate"].get("Resources") or {}).get("Limits") or {}
    dsn = ok(paas("svc", "dsn", "db", "--env", "prod")).stdout.strip()
    assert (limits.get("MemoryBytes"), limits.get("NanoCPUs"), dsn.split("://")[0]) == (MEMORY_BYTES, NANO_CPUS, SCHEME)
    assert f"@{nodes.manager.ip}:" in dsn, dsn
