"""Operating a service on the real engine: `svc wait` after `--no-wait`, `svc connect`,
`svc rotate-password`, resource limits with `svc update`, and `svc stats`."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest
import redis

from tests.support.cli import run_paas_process
from tests.support.images import MARIADB_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, STANDIN_IMAGE, VALKEY_IMAGE


def add(paas, slug, template, image, *extra, env="production"):
    result = paas("svc", "add", slug, "--template", template, "--env", env, "--image", image, *extra)
    assert result.exit_code == 0, result.output
    return result


def dsn(paas, slug, env="production"):
    result = paas("svc", "dsn", slug, "--env", env)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def status(paas, slug, env="production"):
    result = paas("svc", "show", slug, "--env", env, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["status"]


# -- svc add --no-wait, svc wait ---------------------------------------------------------

def test_no_wait_service_is_starting_exported_with_a_warning_and_ready_after_wait(paas, engine):
    result = add(paas, "cache", "redis-7", REDIS_IMAGE, "--no-wait")
    assert "Starting" in result.stdout and "svc wait cache" in result.stderr
    assert status(paas, "cache") == "Starting"  # old code: Failed, for good
    exported = paas("env", "export", "--env", "production")
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.startswith("CACHE_URL=redis://")  # old code: left out
    assert "cache is Starting" in exported.stderr
    strict = paas("env", "export", "--env", "production", "--strict")
    assert strict.exit_code == 4 and strict.stdout == "" and "cache (Starting)" in strict.stderr

    waited = paas("svc", "wait", "cache", "--timeout", "60")
    assert waited.exit_code == 0, waited.output
    assert "Ready" in waited.stdout
    assert status(paas, "cache") == "Ready"
    assert redis.Redis.from_url(dsn(paas, "cache")).ping()
    quiet = paas("env", "export", "--env", "production", "--strict")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr, quiet.output


def test_wait_on_a_removed_service_is_a_conflict(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE, "--no-wait")
    assert paas("svc", "rm", "cache").exit_code == 0
    result = paas("svc", "wait", "cache")
    assert result.exit_code == 4 and "removed" in result.stderr, result.output


# -- svc connect ---------------------------------------------------------------------------

def test_connect_pipes_sql_into_psql_inside_the_container(paas, engine):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    result = run_paas_process("svc", "connect", "db", "--env", "production",
                              input="select 'hello ' || current_user;\n")
    assert result.exit_code == 0, result.output
    assert "hello app" in result.stdout
    audit = json.loads(paas("audit", "--json").stdout)
    assert any(entry["action"] == "connect" and entry["slug"] == "db" for entry in audit)


def test_connect_pipes_commands_into_redis_cli_authenticated(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE)
    result = run_paas_process("svc", "connect", "cache", input="SET greeting hi\nGET greeting\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["OK", "hi"]


def test_connect_never_puts_the_password_in_argv(paas, engine, monkeypatch):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    url = dsn(paas, "db")
    password = url.split(":")[2].split("@")[0]
    # A client that shows the exec's argv and environment instead of connecting.
    result = run_paas_process("svc", "connect", "db", env={"PATH": _fake_docker_path(monkeypatch), "PAAS_DEBUG": "1"})
    assert result.exit_code == 0, result.output
    argv, _, environ = result.stdout.partition("--env--\n")
    assert password not in argv
    assert argv.split("\n")[:4] == ["exec", "-i", "-e", "PGPASSWORD"]
    assert f"PGPASSWORD={password}" in environ.splitlines()


def test_connect_pipes_sql_into_mariadb_password_only_in_the_environment(paas, engine):
    since = int(time.time()) - 1
    add(paas, "db", "mariadb-11", MARIADB_IMAGE)
    password = urlsplit(dsn(paas, "db")).password
    # The client's own `system` command shows the running client's argv and whether its
    # environment carries the password ($PPID of the shell it starts is the client).
    script = ("SELECT CONCAT('hello ', CURRENT_USER(), ' in ', DATABASE());\n"
              "\\! tr '\\0' ' ' < /proc/$PPID/cmdline && echo\n"
              "\\! tr '\\0' '\\n' < /proc/$PPID/environ | grep -c '^MYSQL_PWD='\n")
    result = run_paas_process("svc", "connect", "db", "--env", "production", input=script)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "hello app@% in db" in lines
    client = next(line for line in lines if "-u app" in line)
    assert client.split()[1:] == ["-h", "127.0.0.1", "-P", "3306", "-u", "app", "db"] and password not in client
    assert "1" in lines  # MYSQL_PWD is in the client's environment
    argvs = _exec_argvs(engine, _container(paas, "db"), since)
    assert any("mariadb" in argv and "127.0.0.1" in argv for argv in argvs), argvs  # the exec the docker CLI made
    assert not any(password in argv for argv in argvs)


def test_connect_pipes_commands_into_valkey_cli_authenticated(paas, engine):
    since = int(time.time()) - 1
    add(paas, "cache", "valkey-8", VALKEY_IMAGE)
    password = urlsplit(dsn(paas, "cache")).password
    result = run_paas_process("svc", "connect", "cache", input="SET greeting hi\nGET greeting\nACL WHOAMI\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["OK", "hi", "default"]
    argvs = [argv for argv in _exec_argvs(engine, _container(paas, "cache"), since) if "cli" in argv]
    assert argvs and not any(password in argv for argv in argvs)


def test_connect_mongodb_builds_the_login_in_mongosh_from_the_environment(paas, engine, monkeypatch):
    # No image here has mongosh (the MongoDB stand-in is a protocol fake): this checks the
    # command the docker CLI is given, and that only the environment carries the password.
    add(paas, "docs", "mongodb-7", STANDIN_IMAGE)
    password = urlsplit(dsn(paas, "docs")).password
    result = run_paas_process("svc", "connect", "docs", env={"PATH": _fake_docker_path(monkeypatch)})
    assert result.exit_code == 0, result.output
    argv, _, environ = result.stdout.partition("--env--\n")
    argv = argv.splitlines()
    assert password not in "\n".join(argv)
    assert argv[:6] == ["exec", "-i", "-e", "PAAS_USER", "-e", "PAAS_PASSWORD"]
    assert argv[7:11] == ["mongosh", "--nodb", "--quiet", "--shell"]
    assert "process.env.PAAS_PASSWORD" in argv[-1] and "authSource=admin" in argv[-1]
    assert f"PAAS_PASSWORD={password}" in environ.splitlines() and "PAAS_USER=app" in environ.splitlines()


def test_connect_to_a_service_without_a_client_says_so(paas, engine):
    add(paas, "mail", "mailpit", "paas-test/standin:1")
    result = run_paas_process("svc", "connect", "mail")
    assert result.exit_code == 2 and "no client shell" in result.stderr, result.output


def _fake_docker_path(monkeypatch) -> str:
    import os
    import tempfile

    folder = tempfile.mkdtemp(prefix="fake-docker-")
    script = os.path.join(folder, "docker")
    with open(script, "w") as handle:
        handle.write('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\necho --env--\nenv\n')
    os.chmod(script, 0o755)
    return f"{folder}:{os.environ['PATH']}"


# -- svc rotate-password -------------------------------------------------------------------

def test_rotate_postgres_password_old_refused_new_works_data_kept(paas, engine):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    old_url = dsn(paas, "db")
    with psycopg.connect(old_url, autocommit=True) as conn:
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values ('yes')")
    result = paas("svc", "rotate-password", "db")
    assert result.exit_code == 0, result.output
    new_url = dsn(paas, "db")
    assert new_url != old_url and new_url.split("@")[1] == old_url.split("@")[1]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(old_url).close()
    with psycopg.connect(new_url) as conn:
        assert conn.execute("select v from kept").fetchone() == ("yes",)
    entries = json.loads(paas("audit", "--json").stdout)
    rotated = [e for e in entries if e["action"] == "rotate-password"]
    assert len(rotated) == 1 and old_url.split(":")[2].split("@")[0] not in json.dumps(entries)
    assert status(paas, "db") == "Ready"


def test_rotate_redis_password_survives_a_restart(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE)
    old_url = dsn(paas, "cache")
    redis.Redis.from_url(old_url).set("k", "v")
    result = paas("svc", "rotate-password", "cache")
    assert result.exit_code == 0, result.output
    new_url = dsn(paas, "cache")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(old_url).ping()
    assert redis.Redis.from_url(new_url).get("k") == b"v"
    # The engine reads requirepass at start (its stdin config): a restart must keep the NEW password.
    assert paas("svc", "restart", "cache").exit_code == 0
    assert redis.Redis.from_url(new_url).get("k") == b"v"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(old_url).ping()
    container = engine.api.inspect_container(json.loads(paas("svc", "show", "cache", "--json").stdout)["container"])
    assert old_url.split(":")[2].split("@")[0] not in json.dumps(container["Config"])


def test_rotation_interrupted_after_the_engine_changed_is_finished_by_the_next_run(paas, engine, isolated_home):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    # Simulate a crash between changing the engine and storing the secret: the pending secret is
    # recorded and the engine has it, the stored secret is the old one.
    from paas_svc.cli.state import open_profile
    from paas_svc.kinds import kind_of
    from paas_svc.kinds.clients import rotation

    profile = open_profile()
    service = profile.store.get_service("default", "production", "db")
    old = profile.vault.credentials(service)
    new = {**old, "password": "N3wPassw0rdN3wPassw0rdN3wPassw0rd"}
    profile.store.set_pending_secret(service.id, profile.vault.encrypt(new))
    plan = rotation(kind_of(service.template, service.spec), old, new["password"], 5432)
    from paas_svc.engine.sdk import DockerEngine

    assert DockerEngine().exec_capture(service.container_name, plan.command.argv, plan.command.environment).exit_code == 0
    profile.store.close()
    result = paas("svc", "rotate-password", "db")
    assert result.exit_code == 0, result.output
    assert "interrupted" in result.stdout
    psycopg.connect(dsn(paas, "db")).close()
    assert "N3wPassw0rd" in dsn(paas, "db")


def _stored_credentials(slug, env="production") -> tuple[dict, bool]:
    """What the store holds for the service: (credentials, a rotation still pending?)."""
    from paas_svc.cli.state import open_profile

    profile = open_profile()
    try:
        service = profile.store.get_service("default", env, slug)
        return profile.vault.credentials(service), profile.store.pending_secret(service.id) is not None
    finally:
        profile.store.close()


def _mysql(url, user=None, password=None):
    return pymysql.connect(host=url.hostname, port=url.port, user=user or url.username,
                           password=url.password if password is None else password,
                           database=url.path.lstrip("/") if user is None else None, autocommit=True, connect_timeout=10)


def _exec_argvs(engine, container, since: int) -> list[str]:
    """The command line of every exec the engine ran in the container since then, as the engine
    recorded it (its `exec_create` events; finished execs leave the container's ExecIDs)."""
    events = engine.api.events(since=since, until=int(time.time()) + 1, decode=True,
                               filters={"container": container, "event": "exec_create"})
    argvs = []
    for event in events:
        process = engine.api.exec_inspect(event["Actor"]["Attributes"]["execID"])["ProcessConfig"]
        argvs.append(" ".join([process["entrypoint"], *process.get("arguments", [])]))
        assert argvs[-1] in event["Action"]
    return argvs


def _container(paas, slug):
    return json.loads(paas("svc", "show", slug, "--json").stdout)["container"]


def test_rotate_mariadb_app_and_root_passwords_old_refused_new_work_data_kept(paas, engine):
    since = int(time.time()) - 1
    add(paas, "db", "mariadb-11", MARIADB_IMAGE)
    old_url = urlsplit(dsn(paas, "db"))
    old_root = _stored_credentials("db")[0]["root_password"]
    with _mysql(old_url) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE kept (v VARCHAR(8))")
        cursor.execute("INSERT INTO kept VALUES ('yes')")
    with _mysql(old_url, "root", old_root) as conn:  # root@'%', as the template makes it
        pass

    result = paas("svc", "rotate-password", "db", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["also"] == ["root_password"]
    new_url = urlsplit(dsn(paas, "db"))
    stored, pending = _stored_credentials("db")
    assert new_url.password != old_url.password and new_url.netloc.split("@")[1] == old_url.netloc.split("@")[1]
    assert stored["password"] == new_url.password and not pending  # the stored secret replaced
    assert stored["root_password"] != old_root and len(stored["root_password"]) == len(old_root)

    with pytest.raises(pymysql.err.OperationalError) as refused:
        _mysql(old_url).close()
    assert refused.value.args[0] == 1045  # access denied
    with _mysql(new_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT v FROM kept")
        assert cursor.fetchall() == (("yes",),)
    with pytest.raises(pymysql.err.OperationalError):
        _mysql(old_url, "root", old_root).close()
    with _mysql(new_url, "root", stored["root_password"]) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM mysql.user WHERE user = 'root'")
        assert cursor.fetchone()[0] >= 2  # root@localhost too, inside the container:
    container = _container(paas, "db")
    local = engine.api.exec_create(container, ["mariadb", "-u", "root", "-N", "-e", "SELECT 1"],
                                   environment={"MYSQL_PWD": stored["root_password"]})
    assert engine.api.exec_start(local).strip() == b"1"
    local_old = engine.api.exec_create(container, ["mariadb", "-u", "root", "-e", "SELECT 1"],
                                       environment={"MYSQL_PWD": old_root})
    assert b"Access denied" in engine.api.exec_start(local_old)

    entries = json.loads(paas("audit", "--json").stdout)
    rotated = [e for e in entries if e["action"] == "rotate-password"]
    assert len(rotated) == 1 and "root_password" in json.dumps(rotated)
    secrets = (old_url.password, old_root, new_url.password, stored["root_password"])
    assert not any(s in json.dumps(entries) for s in secrets)
    argvs = _exec_argvs(engine, container, since)
    assert any("SET PASSWORD" in argv for argv in argvs), argvs  # the rotation ran as an exec ...
    assert not any(s in argv for argv in argvs for s in secrets)  # ... and no exec's argv held a password
    assert status(paas, "db") == "Ready"

    # A mysql-kind template without a root account: the app user changes its own password.
    from paas_svc.kinds.clients import rotation

    own = rotation("mysql", {"user": "app", "password": new_url.password, "db": "db"}, "0wnPassw0rd0wnPassw0rd", 3306)
    assert own.also == () and "root" not in " ".join(own.command.argv)
    changed = engine.api.exec_create(container, own.command.argv, environment=own.command.environment)
    engine.api.exec_start(changed)
    assert engine.api.exec_inspect(changed)["ExitCode"] == 0
    _mysql(new_url, "app", "0wnPassw0rd0wnPassw0rd").close()
    with pytest.raises(pymysql.err.OperationalError):
        _mysql(new_url).close()


def test_rotate_a_service_without_credentials_is_refused(paas, engine):
    add(paas, "mail", "mailpit", "paas-test/standin:1")
    result = paas("svc", "rotate-password", "mail")
    assert result.exit_code == 2 and "no password" in result.stderr, result.output


# -- limits, svc update, doctor, svc stats ---------------------------------------------------

def test_limits_at_add_and_update_recreate_on_the_same_volume_credentials_and_port(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE, "--memory", "256m", "--cpus", "0.5")
    shown = json.loads(paas("svc", "show", "cache", "--json").stdout)
    assert shown["limits"] == {"memory": "256m", "memory_bytes": 256 * 1024 ** 2, "cpus": 0.5}
    host = engine.api.inspect_container(shown["container"])["HostConfig"]
    assert host["Memory"] == 256 * 1024 ** 2 and host["NanoCpus"] == 500_000_000
    url = dsn(paas, "cache")
    redis.Redis.from_url(url).set("k", "v")

    result = paas("svc", "update", "cache", "--memory", "1g", "--cpus", "none")
    assert result.exit_code == 0, result.output
    host = engine.api.inspect_container(shown["container"])["HostConfig"]
    assert host["Memory"] == 1024 ** 3 and not host["NanoCpus"]
    assert dsn(paas, "cache") == url and redis.Redis.from_url(url).get("k") == b"v"
    listed = json.loads(paas("svc", "list", "--json").stdout)
    assert listed[0]["limits"]["memory"] == "1g" and listed[0]["limits"]["cpus"] is None
    assert listed[0]["status"] == "Ready"
    audit = [e for e in json.loads(paas("audit", "--json").stdout) if e["action"] == "update"]
    assert len(audit) == 1


def test_update_refuses_more_cpus_than_the_host_has_and_changes_nothing(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE)
    before = json.loads(paas("svc", "show", "cache", "--json").stdout)
    result = paas("svc", "update", "cache", "--cpus", "512")
    assert result.exit_code == 2 and "CPUs" in result.stderr, result.output
    after = json.loads(paas("svc", "show", "cache", "--json").stdout)
    assert after["limits"] == before["limits"] and after["status"] == "Ready"


def test_doctor_reports_a_container_whose_limits_disagree(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE, "--memory", "256m")
    container = json.loads(paas("svc", "show", "cache", "--json").stdout)["container"]
    engine.api.update_container(container, mem_limit="512m", memswap_limit="1g")
    result = paas("doctor", "--json")
    assert result.exit_code == 9, result.output
    assert "limits" in result.stdout


def test_stats_shows_cpu_memory_against_its_limit_and_volume_size(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE, "--memory", "256m")
    add(paas, "other", "redis-7", REDIS_IMAGE)
    client = redis.Redis.from_url(dsn(paas, "cache"))
    client.set("big", "x" * 2_000_000)
    client.bgsave()
    result = paas("svc", "stats", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["slug"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"cache", "other"}
    cache = rows["cache"]
    assert cache["running"] and cache["memory_limit_bytes"] == 256 * 1024 ** 2 and cache["memory_limited"]
    assert 0 < cache["memory_bytes"] < cache["memory_limit_bytes"]
    assert cache["cpu_percent"] >= 0
    assert cache["volume_bytes"] >= 2_000_000  # the append-only file holds the value
    assert rows["other"]["memory_limited"] is False
    one = paas("svc", "stats", "cache")
    assert one.exit_code == 0 and "cache" in one.stdout and "other" not in one.stdout, one.output
