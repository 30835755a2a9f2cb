"""Target rules that need no engine: URL forms, TLS/insecure, what is refused and why."""

from __future__ import annotations

import json

import pytest

from paas_svc.dsn import is_loopback
from paas_svc.engine.status import parse_docker_host, swarm_service_view
from paas_svc.engine.targets import Target


@pytest.mark.parametrize("url,parsed", [
    ("unix:///var/run/docker.sock", ("unix", "/var/run/docker.sock", 0)),
    ("tcp://10.0.0.5:2376", ("tcp", "10.0.0.5", 2376)),
    ("tcp://engine.example", ("tcp", "engine.example", 2375)),
    ("ssh://deploy@host.example", ("ssh", "host.example", 22)),
    ("ssh://deploy@host.example:2222", ("ssh", "host.example", 2222)),
    ("tcp://[fd00::5]:2376", ("tcp", "fd00::5", 2376)),
])
def test_docker_host_forms(url, parsed):
    assert parse_docker_host(url) == parsed


@pytest.mark.parametrize("args,code,words", [
    (["--docker-host", "tcp://127.0.0.1:9"], 2, "--insecure"),  # plain tcp needs an explicit --insecure
    (["--docker-host", "tcp://127.0.0.1:9", "--tls-ca", "x"], 2, "all three"),
    (["--docker-host", "ssh://host.example"], 2, "user"),
    (["--docker-host", "ftp://x"], 2, "ssh://"),
    (["--docker-host", "unix:///nonexistent/docker.sock"], 5, "Cannot reach"),
    (["--docker-host", "tcp://127.0.0.1:9", "--insecure"], 5, "Cannot reach"),
])
def test_target_add_refusals(paas, isolated_home, args, code, words):
    result = paas("target", "add", "prod", *args)
    assert result.exit_code == code, result.output
    assert words in result.stderr
    listed = json.loads(paas("target", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["local"], "a refused target leaves nothing behind"
    assert not (isolated_home / "targets" / "prod").exists()


def test_local_is_built_in_and_cannot_be_removed_or_added(paas):
    assert paas("target", "rm", "local").exit_code == 4
    assert paas("target", "add", "local", "--docker-host", "unix:///var/run/docker.sock").exit_code == 4
    assert paas("env", "create", "prod", "--target", "nowhere").exit_code == 3


def test_bind_address_follows_the_publish_address():
    assert Target("a", "tcp://h:2376", "127.0.0.1").bind_address == "127.0.0.1"
    assert Target("a", "tcp://h:2376", "10.0.0.5").bind_address == "0.0.0.0"
    assert is_loopback("127.0.0.2") and not is_loopback("192.168.1.2")


def _service(replicas=1, node="w1"):
    return {"ID": "s1", "Spec": {"Name": "paas-svc-x", "Labels": {"paas.node": node},
                                 "Mode": {"Replicated": {"Replicas": replicas}},
                                 "TaskTemplate": {"ContainerSpec": {"Image": "pg:16@sha256:abc"}},
                                 "EndpointSpec": {"Ports": [{"TargetPort": 5432, "PublishedPort": 41000}]}}}


def _node(state="ready", availability="active"):
    return {"w1": {"Status": {"State": state}, "Spec": {"Availability": availability}}}


def _task(state, index=1, err=None):
    return {"ServiceID": "s1", "DesiredState": "running", "Version": {"Index": index},
            "Status": {"State": state, "Err": err, "Message": state}}


@pytest.mark.parametrize("service,tasks,nodes,state", [
    (_service(), [_task("running")], _node(), "running"),
    (_service(), [_task("failed", 1, "exit 1"), _task("preparing", 2)], _node(), "starting"),
    (_service(), [_task("running")], _node("down"), "pending"),  # never shown Ready on a lost node
    (_service(), [_task("running")], _node(availability="drain"), "pending"),
    (_service(), [_task("rejected", 3, "no such image")], _node(), "failed"),
    (_service(replicas=0), [], _node(), "exited"),
    (_service(node="gone"), [], _node(), "pending"),
])
def test_swarm_status_from_tasks_and_nodes(service, tasks, nodes, state):
    view = swarm_service_view(service, tasks, nodes)
    assert view.state == state
    assert view.image == "pg:16" and view.ports == {5432: ("", 41000)}


@pytest.mark.parametrize("adapter", ["paas_svc.engine.sdk:DockerEngine", "paas_svc.engine.swarm:SwarmEngine", "paas_svc.engine.local:LocalEngine"])
def test_every_adapter_implements_the_engine_protocol(adapter):
    """Each adapter has every method of engine_api.Engine with the same parameters."""
    import importlib
    import inspect

    from paas_svc.engine.protocol import Engine

    module, name = adapter.split(":")
    cls = getattr(importlib.import_module(module), name)
    for method in [m for m in vars(Engine) if not m.startswith("_") and callable(getattr(Engine, m))]:
        assert hasattr(cls, method), f"{name} lacks {method}"
        wanted = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(Engine, method)).parameters.values()]
        actual = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(cls, method)).parameters.values()]
        assert actual == wanted, f"{name}.{method}"


def test_the_status_path_does_not_import_the_sdk_adapter():
    """engine.py and docker_status.py imported each other; the fast path now stands alone."""
    import subprocess
    import sys

    code = ("import sys, paas_svc.usecases.status, paas_svc.engine.status, paas_svc.engine.targets, paas_svc.usecases.reveal;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'docker' or m in ('paas_svc.engine.sdk', 'paas_svc.engine.protocol')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
