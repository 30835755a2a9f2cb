"""`paas env create NAME --isolated` on other targets: the environment's network is made on its
target's engine (a remote engine over TLS: a bridge; a Swarm: an attachable overlay), labelled
with the profile, and only a container on it, not one on paas-apps, reaches the service."""

from __future__ import annotations

import json
import uuid

from tests.support.cli import ok
from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE
from tests.support.nodes import add_tls_target


def test_an_isolated_environment_on_a_remote_target_gets_its_network_there(paas, remote_node, isolated_home):
    from tests.support.engine import profile_id

    project = f"iso-{uuid.uuid4().hex[:6]}"
    network = f"paas-{project}_iso"
    ok(paas("project", "create", project))
    add_tls_target(paas, remote_node, "far")
    ok(paas("env", "create", "iso", "--target", "far", "--isolated", "-p", project))
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "iso", "--image", REDIS_IMAGE, "-p", project,
            "--no-tls"))  # the app containers below, on the remote node, have no CA file
    node = remote_node.node
    try:
        made = json.loads(node.sh(f"docker network inspect {network}"))[0]
        assert made["Driver"] == "bridge" and made["Labels"]["paas.profile"] == profile_id(isolated_home)
        shown = json.loads(ok(paas("svc", "show", "cache", "--env", "iso", "-p", project, "--json")).stdout)
        container = shown["container"]
        assert list(json.loads(node.sh(f"docker inspect {container}"))[0]["NetworkSettings"]["Networks"]) == [network]
        url = ok(paas("svc", "dsn", "cache", "--env", "iso", "--network", "-p", project)).stdout.strip()
        node.sh("docker network inspect paas-apps >/dev/null 2>&1 || docker network create paas-apps")
        probe = f"docker run --rm --network {{}} --entrypoint redis-cli {REDIS_IMAGE} --no-auth-warning -u '{url}' ping"
        assert "PONG" not in node.sh(probe.format("paas-apps") + " 2>&1", check=False)
        assert node.sh(probe.format(network)).strip() == "PONG"
        report = json.loads(ok(paas("doctor", "--json")).stdout)
        assert [f["ok"] for f in report["findings"] if f["check"] == "network" and network in f["message"]] == [True]
    finally:
        ok(paas("svc", "rm", "cache", "--env", "iso", "--purge", "--yes", "--no-backup", "-p", project))
    ok(paas("env", "rm", "iso", "-p", project))
    assert node.sh(f"docker network ls -q --filter name={network}").strip() == ""


def test_an_isolated_environment_on_a_swarm_gets_an_attachable_overlay(paas, swarm, isolated_home):
    from tests.support.engine import profile_id

    certs = swarm.cluster.certs
    ok(paas("target", "add", "cluster", "--docker-host", swarm.manager.url, "--publish-address", swarm.manager.ip,
            "--tls-ca", str(certs.ca_file), "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file)))
    project = f"iso-{uuid.uuid4().hex[:6]}"
    network = f"paas-{project}_iso"
    ok(paas("project", "create", project))
    ok(paas("env", "create", "iso", "--target", "cluster", "--isolated", "-p", project))
    ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "iso", "--image", POSTGRES_IMAGE, "--node", "wk1",
            "-p", project, "--no-tls"))  # app containers on other nodes have no CA file
    try:
        made = json.loads(swarm.manager.sh(f"docker network inspect {network}"))[0]
        assert (made["Driver"], made["Attachable"], made["Scope"]) == ("overlay", True, "swarm")
        assert made["Labels"]["paas.profile"] == profile_id(isolated_home)
        service = json.loads(ok(paas("svc", "show", "db", "--env", "iso", "-p", project, "--json")).stdout)["container"]
        spec = json.loads(swarm.manager.sh(f"docker service inspect {service}"))[0]["Spec"]
        assert [n["Target"] for n in spec["TaskTemplate"]["Networks"]] == [made["Id"]]
        dsn = ok(paas("svc", "dsn", "db", "--env", "iso", "--network", "-p", project)).stdout.strip()
        query = f"docker run --rm --network {{}} --entrypoint psql {POSTGRES_IMAGE} '{dsn}' -tAc 'SELECT 42'"
        # From the other worker: on the environment's overlay the service answers, on paas-apps it does not.
        assert swarm.worker2.sh(query.format(network)).strip() == "42"
        swarm.manager.sh("docker network inspect paas-apps >/dev/null 2>&1 || "
                         "docker network create --driver overlay --attachable paas-apps")
        assert "42" not in swarm.worker2.sh(query.format("paas-apps") + " 2>&1", check=False).split()
    finally:
        ok(paas("svc", "rm", "db", "--env", "iso", "--purge", "--yes", "--no-backup", "-p", project))
    ok(paas("env", "rm", "iso", "-p", project))
    assert swarm.manager.sh(f"docker network ls -q --filter name={network}").strip() == ""
