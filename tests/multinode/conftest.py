"""One node set for the whole multinode tier: a single bridge network and CA (`cluster`), on
which `remote_node` (one engine reached over TLS and ssh) and `swarm` (a 3-node Swarm) start
their nodes the first time a test asks for them. All are session-scoped: every multinode test
of the run shares them, and everything is removed at the end, also when a test fails."""

from __future__ import annotations

import pytest

from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE
from tests.support.nodes import Certificates, RemoteNode, Swarm, known_hosts_for, make_cluster, ssh_keypair


@pytest.fixture(scope="session")
def cluster(docker_client, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("multinode")
    made = make_cluster(workdir)
    try:
        made.certs = Certificates(workdir / "certs")
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="session")
def remote_node(cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("remote-node")
    key, public = ssh_keypair(workdir / "ssh")
    node = cluster.start_node("remote1", tls=True, ssh_public_key=public)
    node.wait_engine()
    cluster.load_flat_image(REDIS_IMAGE, [node])
    cluster.load_flat_image(POSTGRES_IMAGE, [node])
    return RemoteNode(cluster, node, key, known_hosts_for(node, workdir))


@pytest.fixture(scope="session")
def swarm(cluster):
    manager, worker1, worker2 = (cluster.start_node(name, tls=True) for name in ("mgr", "wk1", "wk2"))
    for node in (manager, worker1, worker2):
        node.wait_engine()
    manager.sh(f"docker swarm init --advertise-addr {manager.ip}")
    token = manager.sh("docker swarm join-token -q worker").strip()
    for node in (worker1, worker2):
        node.sh(f"docker swarm join --token {token} {manager.ip}:2377")
    cluster.load_flat_image(POSTGRES_IMAGE, [manager, worker1, worker2])
    return Swarm(cluster, manager, worker1, worker2)
