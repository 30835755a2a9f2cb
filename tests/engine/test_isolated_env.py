"""`paas env create NAME --isolated` on the real engine: the environment's services join a network
of their own, which a container on paas-apps cannot reach (neither by name nor by address) and one
on that network can, with the variables `env export --network` and `paas run --network` give it.
The default environments keep paas-apps."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.support.cli import ok, run_paas_process
from tests.support.engine import profile_id
from tests.support.images import REDIS_IMAGE

NETWORK_COMMENT = "# docker run --network {} --env-file FILE IMAGE"


@pytest.fixture
def project(paas, monkeypatch) -> str:
    """A project of its own: the network name (paas-PROJECT.ENV) is then unique on the engine."""
    name = f"iso-{uuid.uuid4().hex[:8]}"
    result = paas("project", "create", name)
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("PAAS_PROJECT", name)
    return name



def client(engine, home, network: str, script: str, environment: dict | None = None) -> str:
    """Run `script` in a throwaway container of the stand-in Redis image (redis-cli) on `network`;
    its stdout and stderr, and its exit code as a last line `rc=N`."""
    output = engine.containers.run(REDIS_IMAGE, ["-c", script + '; echo "rc=$?"'], entrypoint="sh", network=network,
                                   environment=environment or {}, remove=True, stderr=True,
                                   labels={"paas.profile": profile_id(home)})
    return output.decode()


def networks_of(engine, container: str) -> list[str]:
    return list(engine.api.inspect_container(container)["NetworkSettings"]["Networks"])


def test_a_container_on_paas_apps_cannot_reach_an_isolated_environment(engine, paas, project, isolated_home):
    network = f"paas-{project}_secure"
    created = json.loads(ok(paas("env", "create", "secure", "--isolated", "--json")).stdout)
    assert (created["isolated"], created["network"]) == (True, network)
    assert not engine.networks.list(names=[network])  # made at the first service, not before

    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "secure", "--image", REDIS_IMAGE))
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE))
    isolated = json.loads(ok(paas("svc", "show", "cache", "--env", "secure", "--json")).stdout)["container"]
    shared = json.loads(ok(paas("svc", "show", "cache", "--env", "production", "--json")).stdout)["container"]

    # The isolated service is on its environment's network only; the default env's on paas-apps only.
    assert networks_of(engine, isolated) == [network]
    assert networks_of(engine, shared) == ["paas-apps"]
    made = engine.api.inspect_network(network)
    assert made["Driver"] == "bridge"
    assert made["Labels"] == {"paas.managed": "true", "paas.profile": profile_id(isolated_home),
                              "paas.project": project, "paas.env": "secure"}

    url = ok(paas("svc", "dsn", "cache", "--env", "secure", "--network")).stdout.strip()
    assert f"@{isolated}:6379/" in url
    address = engine.api.inspect_container(isolated)["NetworkSettings"]["Networks"][network]["IPAddress"]

    # From paas-apps: the name does not resolve, and its address does not answer (dropped: timeout).
    from_apps = client(engine, isolated_home, "paas-apps",
                       f'redis-cli --no-auth-warning -u "$URL" ping; timeout 5 redis-cli -h {address} -p 6379 ping', {"URL": url})
    assert "PONG" not in from_apps
    assert "Name or service not known" in from_apps or "Could not connect" in from_apps
    assert from_apps.strip().endswith("rc=124") or "Connection refused" in from_apps, from_apps
    # From the environment's own network: the same URL answers.
    from_env = client(engine, isolated_home, network, 'redis-cli --no-auth-warning -u "$URL" ping', {"URL": url})
    assert from_env.split() == ["PONG", "rc=0"]
    # The shared service is still reached from paas-apps, and not from the isolated network.
    shared_url = ok(paas("svc", "dsn", "cache", "--env", "production", "--network")).stdout.strip()
    assert client(engine, isolated_home, "paas-apps", 'redis-cli --no-auth-warning -u "$URL" ping', {"URL": shared_url}).split() == ["PONG", "rc=0"]
    assert "PONG" not in client(engine, isolated_home, network, 'redis-cli --no-auth-warning -u "$URL" ping', {"URL": shared_url})


def test_export_and_run_name_the_environments_network(engine, paas, project, isolated_home):
    network = f"paas-{project}_secure"
    ok(paas("env", "create", "secure", "--isolated"))
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "secure", "--image", REDIS_IMAGE))
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE))

    text = ok(paas("env", "export", "--env", "secure", "--network", "--format", "docker")).stdout
    lines = text.splitlines()
    assert lines[0] == NETWORK_COMMENT.format(network)
    # What the comment says, done: the env-file's variables on that network reach the service.
    variables = dict(line.split("=", 1) for line in lines[1:])
    assert client(engine, isolated_home, network, 'redis-cli --no-auth-warning -u "$CACHE_URL" ping', variables).split() == ["PONG", "rc=0"]
    # The default environment's services are on paas-apps, its export unchanged (the variables
    # alone); the host view names no network.
    default = ok(paas("env", "export", "--env", "production", "--network", "--format", "docker")).stdout
    assert not default.startswith("#") and "CACHE_URL=" in default
    shared = json.loads(ok(paas("svc", "show", "cache", "--env", "production", "--json")).stdout)["container"]
    assert networks_of(engine, shared) == ["paas-apps"]
    assert not ok(paas("env", "export", "--env", "secure", "--format", "docker")).stdout.startswith("#")

    # paas run --network: the command learns the network and reaches the service through it.
    name = f"paas-test-app-{uuid.uuid4().hex[:8]}"
    script = (f'echo "$PAAS_NETWORK"; docker run --rm --name {name} --label paas.profile={profile_id(isolated_home)} '
              f'--network "$PAAS_NETWORK" -e CACHE_URL --entrypoint redis-cli {REDIS_IMAGE} --no-auth-warning -u "$CACHE_URL" ping')
    try:
        ran = run_paas_process("run", "--env", "secure", "--network", "--", "sh", "-c", script, env={"PAAS_PROJECT": project})
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.split() == [network, "PONG"]
    ran = run_paas_process("run", "--env", "production", "--network", "--", "sh", "-c", 'echo "$PAAS_NETWORK"',
                           env={"PAAS_PROJECT": project})
    assert ran.stdout.split() == ["paas-apps"]
    ran = run_paas_process("run", "--env", "secure", "--", "sh", "-c", 'echo "${PAAS_NETWORK-unset}"', env={"PAAS_PROJECT": project})
    assert ran.stdout.split() == ["unset"]  # the host view: no network to join


def test_doctor_recreates_a_missing_network_and_env_rm_removes_it(engine, paas, project, isolated_home):
    network = f"paas-{project}_secure"
    ok(paas("env", "create", "secure", "--isolated"))
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "secure", "--image", REDIS_IMAGE))
    container = json.loads(ok(paas("svc", "show", "cache", "--env", "secure", "--json")).stdout)["container"]
    engine.api.remove_container(container, force=True)  # the container gone, its network can go too
    engine.api.remove_network(network)

    report = json.loads(paas("doctor", "--json").stdout)
    missing = [f for f in report["findings"] if f["check"] == "network" and network in f["message"]]
    assert [(f["ok"], f["action"], f["target"]) for f in missing] == [(False, "create-env-network", f"{project}/secure")]
    fixed = paas("doctor", "--fix", "--json")
    assert engine.api.inspect_network(network)["Labels"]["paas.profile"] == profile_id(isolated_home), fixed.output
    assert networks_of(engine, container) == [network]  # the repair re-created the container on it
    report = json.loads(paas("doctor", "--json").stdout)
    assert [f["ok"] for f in report["findings"] if f["check"] == "network" and network in f["message"]] == [True]

    # env rm: refused while it has services; once empty, its network goes with it.
    assert paas("env", "rm", "secure").exit_code == 4
    ok(paas("svc", "rm", "cache", "--env", "secure", "--purge", "--yes"))
    removed = json.loads(ok(paas("env", "rm", "secure", "--json")).stdout)
    assert (removed["network"], removed["network_removed"]) == (network, True)
    assert not engine.networks.list(names=[network])
