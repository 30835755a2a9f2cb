"""Redis and Valkey get their password on no command line, on the real engine.

Before, the container's command was `redis-server --requirepass PW`: PW was in `docker inspect`
(Config.Cmd, Args) and in host `ps` until the server rewrote its title. Now the redis kind hands
it to the server in a config on stdin (paas_svc/kinds/redis.py). These tests watch every
process's command line on the host (through /proc, as `ps -eo args` reads it, but fast enough to
see a shell that lives a few milliseconds) while services are added, restarted, re-created and
their password rotated, and read the containers' inspect data.
"""

from __future__ import annotations

import json
import time

import pytest
import redis

from tests.support.argv_watch import ArgvWatcher
from tests.support.images import REDIS_IMAGE, VALKEY_IMAGE

SERVICES = [("redis-7", REDIS_IMAGE, "redis-server"), ("valkey-8", VALKEY_IMAGE, "valkey-server")]


def _show(paas, slug: str) -> dict:
    result = paas("svc", "show", slug, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _dsn(paas, slug: str) -> str:
    result = paas("svc", "dsn", slug)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def _run_ok(paas, *args: str) -> None:
    result = paas(*args)
    assert result.exit_code == 0, result.output


def _argv_fields(engine, container_name: str) -> str:
    """What `docker inspect` shows of the container's command: Path, Args, Cmd, Entrypoint."""
    container = engine.api.inspect_container(container_name)
    return json.dumps([container["Path"], container["Args"], container["Config"]["Cmd"], container["Config"]["Entrypoint"]])


def _server_processes(engine, container_name: str) -> list[dict]:
    top = engine.api.top(container_name, ps_args="-o pid,user,args")
    return [dict(zip(top["Titles"], row)) for row in top["Processes"]]


@pytest.mark.parametrize("template,image,server", SERVICES, ids=[key for key, _, _ in SERVICES])
def test_password_is_on_no_command_line_through_add_restart_and_rotation(paas, engine, template, image, server):
    with ArgvWatcher() as watcher:
        _run_ok(paas, "svc", "add", "cache", "--template", template, "--image", image, "--timeout", "300")
        url = _dsn(paas, "cache")
        redis.Redis.from_url(url).set("greeting", "hello")
        _run_ok(paas, "svc", "restart", "cache")
        assert redis.Redis.from_url(url).get("greeting") == b"hello"
    password = _password(url)
    assert watcher.rounds > 0 and any(server in line for line in watcher.lines), "the watcher saw the server start"
    assert watcher.leaked(password) == [], "the password is on a command line"
    container = _show(paas, "cache")["container"]
    assert password not in _argv_fields(engine, container)
    # The image's entrypoint still did its job: the server runs as the redis user, as PID 1's
    # only process (no shell left waiting in front of it, so `docker stop` reaches the server).
    processes = _server_processes(engine, container)
    assert len(processes) == 1 and server in processes[0]["COMMAND"], processes
    assert processes[0]["USER"] not in ("root", "0"), processes

    with ArgvWatcher() as watcher:
        _run_ok(paas, "svc", "rotate-password", "cache")
        new_url = _dsn(paas, "cache")
        _run_ok(paas, "svc", "restart", "cache")  # the re-created container starts with the NEW one
    new_password = _password(new_url)
    assert new_password != password
    assert watcher.leaked(password) == [] and watcher.leaked(new_password) == []
    assert new_password not in _argv_fields(engine, container)
    assert redis.Redis.from_url(new_url).get("greeting") == b"hello"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(url).ping()


def test_a_service_made_with_requirepass_on_its_command_moves_off_it_when_re_created(paas, engine, monkeypatch):
    """Services created before the change keep `[redis-server, --requirepass, "{password}", ...]`
    in their stored definition and container. They keep working as they are; their next
    re-create (here `svc update`) gives them the new form with the same password and data."""
    from paas_svc.cli.state import open_profile
    from paas_svc.kinds import redis as redis_kind

    _run_ok(paas, "svc", "add", "cache", "--template", "redis-7", "--image", REDIS_IMAGE, "--timeout", "300")
    url = _dsn(paas, "cache")
    password = _password(url)
    redis.Redis.from_url(url).set("greeting", "hello")
    shown = _show(paas, "cache")
    profile = open_profile()
    service = profile.store.get_service(shown["project"], shown["env"], "cache")
    profile.store.set_spec(service.id, {**service.spec, "command": ["redis-server", "--requirepass", "{password}",
                                                                    "--appendonly", "yes"]})
    profile.store.close()
    with monkeypatch.context() as old_code:  # re-create it as the old code did: the password on its command
        old_code.delattr(redis_kind, "container_command")
        _run_ok(paas, "svc", "update", "cache", "--memory", "256m", "--timeout", "300")
    container = _show(paas, "cache")["container"]
    assert password in _argv_fields(engine, container), "the old form, as older versions made it"
    assert redis.Redis.from_url(url).get("greeting") == b"hello"
    _run_ok(paas, "svc", "restart", "cache")
    assert redis.Redis.from_url(url).get("greeting") == b"hello"

    _run_ok(paas, "svc", "update", "cache", "--memory", "512m", "--timeout", "300")
    assert password not in _argv_fields(engine, container)
    assert _dsn(paas, "cache") == url
    assert redis.Redis.from_url(url).get("greeting") == b"hello"


HOSTILE_PASSWORDS = ['a b"c\\d#e\'f$g`h', "x\\", '"', "tab\there", "new\nline requirepass x", "ünï©ødé", "$(touch /tmp/x)"]


@pytest.mark.parametrize("image,server", [(REDIS_IMAGE, "redis-server"), (VALKEY_IMAGE, "valkey-server")])
def test_the_start_config_quotes_any_password(docker_client, image, server):
    """Generated passwords are letters and digits, but the quoting holds for any text: the real
    server, started by the real start script, accepts exactly that password and no other."""
    from paas_svc.kinds.redis import container_command

    for password in HOSTILE_PASSWORDS:
        command, environment = container_command([server, "--appendonly", "no"], {"password": password})
        container = docker_client.containers.run(image, command, environment=environment, detach=True,
                                                 ports={"6379/tcp": ("127.0.0.1", None)}, labels={"paas.test": "redis-argv"})
        try:
            container.reload()
            port = int(container.attrs["NetworkSettings"]["Ports"]["6379/tcp"][0]["HostPort"])
            client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=5)
            deadline = time.monotonic() + 120
            while True:
                try:
                    assert client.ping()
                    break
                except (redis.ConnectionError, redis.TimeoutError):
                    container.reload()
                    assert container.status == "running" and time.monotonic() < deadline, container.logs()[-2000:]
                    time.sleep(0.1)
            with pytest.raises(redis.AuthenticationError):
                redis.Redis(host="127.0.0.1", port=port, password=password + "x", socket_timeout=5).ping()
            assert container.exec_run(["test", "-e", "/tmp/x"]).exit_code != 0
        finally:
            container.remove(force=True, v=True)
