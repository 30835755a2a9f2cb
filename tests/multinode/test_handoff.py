"""An add into an environment bound to another target is handed to that target's manager with
ALL its arguments (issue 19): `--memory`, `--cpus` and `--url-scheme` reach the container on a
remote engine, and the service spec of a Swarm, and the URL `svc dsn` prints. The nodes are
the tier's shared ones (tests/multinode/conftest.py): the remote engine of `remote_node` and
the manager of `swarm`; each test removes its service, so the next test finds them as they were."""

from __future__ import annotations

import json

from tests.support.cli import ok
from tests.support.images import POSTGRES_IMAGE
from tests.support.nodes import Cluster, Node

MEMORY, CPUS, SCHEME = "256m", "0.5", "postgresql"  # postgres:// is the kind's default scheme
MEMORY_BYTES, NANO_CPUS = 256 * 1024 * 1024, 500_000_000



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


def remove(paas, env: str) -> None:
    """The shared nodes outlive this test: leave nothing on them."""
    paas("svc", "rm", "db", "--env", env, "--purge", "--yes", "--no-backup")


def test_memory_cpus_and_url_scheme_reach_a_remote_engines_container(paas, remote_node):
    node = remote_node.node
    assert add_target(paas, remote_node.cluster, node, "far") == "engine"
    ok(paas("env", "create", "live", "--target", "far"))
    try:
        add_limited_postgres(paas, "live")
        [container] = node.sh("docker ps -q --filter label=paas.slug=db").split()
        host_config = json.loads(node.sh(f"docker inspect --format '{{{{json .HostConfig}}}}' {container}"))
        dsn = ok(paas("svc", "dsn", "db", "--env", "live")).stdout.strip()
        assert (host_config["Memory"], host_config["NanoCpus"], dsn.split("://")[0]) == (MEMORY_BYTES, NANO_CPUS, SCHEME)
        assert f"@{node.ip}:" in dsn, dsn
    finally:
        remove(paas, "live")


def test_memory_cpus_and_url_scheme_reach_a_swarm_service(paas, swarm):
    assert add_target(paas, swarm.cluster, swarm.manager, "cluster") == "swarm"
    ok(paas("env", "create", "prod", "--target", "cluster"))
    try:
        add_limited_postgres(paas, "prod")
        shown = json.loads(ok(paas("svc", "show", "db", "--env", "prod", "--json")).stdout)
        spec = json.loads(swarm.manager.sh(f"docker service inspect {shown['container']}"))[0]["Spec"]
        limits = (spec["TaskTemplate"].get("Resources") or {}).get("Limits") or {}
        dsn = ok(paas("svc", "dsn", "db", "--env", "prod")).stdout.strip()
        assert (limits.get("MemoryBytes"), limits.get("NanoCPUs"), dsn.split("://")[0]) == (MEMORY_BYTES, NANO_CPUS, SCHEME)
        # The task runs on any of the three nodes; the URL names the one it runs on.
        nodes = {node.name.rsplit("-", 1)[0]: node.ip for node in (swarm.manager, swarm.worker1, swarm.worker2)}
        assert nodes.get(shown["node"]) == shown["host"] and f"@{shown['host']}:" in dsn, (shown, dsn)
    finally:
        remove(paas, "prod")
