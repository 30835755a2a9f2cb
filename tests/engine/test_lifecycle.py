"""The service lifecycle against the real Docker engine with stand-in images.

Redis and PostgreSQL stand-ins run Debian's real servers, reached with real clients
through the DSN that `paas svc dsn` renders.
"""

import json
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE, STANDIN_IMAGE

STANDIN_FOR = {
    "postgres-16": POSTGRES_IMAGE,
    "redis-7": REDIS_IMAGE,
    "mongodb-7": STANDIN_IMAGE,
    "meilisearch-1.10": STANDIN_IMAGE,
    "minio": STANDIN_IMAGE,
    "mailpit": STANDIN_IMAGE,
}


def add(paas, slug, template, env="production", *extra):
    result = paas("svc", "add", slug, "--template", template, "--env", env, "--image", STANDIN_FOR[template], *extra)
    assert result.exit_code == 0, result.output
    return result


def dsn(paas, slug, env="production", *extra):
    result = paas("svc", "dsn", slug, "--env", env, *extra)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def listed(paas, *args):
    result = paas("svc", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return {(row["env"], row["slug"]): row for row in json.loads(result.stdout)}


def test_redis_is_usable_through_its_dsn(paas, engine):
    result = add(paas, "cache", "redis-7")
    assert "Ready in" in result.stdout and len(result.stdout.splitlines()) == 1  # $(paas svc add ...) is one line
    assert "CACHE_URL" in result.stderr
    url = dsn(paas, "cache")
    assert url.startswith("redis://default:") and "@127.0.0.1:" in url and url.endswith("/0")
    client = redis.Redis.from_url(url)
    client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(url.replace(url.split(":")[2].split("@")[0], "wrongpassword")).ping()
    # The password-only form of the URL reaches the same server.
    assert redis.Redis.from_url(url.replace("redis://default:", "redis://:")).get("greeting") == b"hello"
    row = listed(paas)[("production", "cache")]
    assert row["status"] == "Ready" and row["env_var"] == "CACHE_URL"
    assert set(row) >= {"id", "project", "env", "slug", "template", "image", "status", "env_var", "container", "volume"}


def test_postgres_rm_keeps_volume_and_re_add_recovers_data(paas, engine):
    add(paas, "db", "postgres-16")
    url = dsn(paas, "db")
    assert url.startswith("postgres://app:") and url.endswith("/db")
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE orders (id serial PRIMARY KEY, item text)")
        connection.execute("INSERT INTO orders (item) SELECT 'item-' || n FROM generate_series(1, 100) n")
    service = listed(paas)[("production", "db")]

    removed = paas("svc", "rm", "db", "--env", "production")
    assert removed.exit_code == 0, removed.output
    assert f"volume {service['volume']} is kept" in removed.stdout
    assert "paas svc add db --env production --template postgres-16" in removed.stderr
    assert engine.volumes.get(service["volume"])
    assert not engine.containers.list(all=True, filters={"name": service["container"]})
    assert ("production", "db") not in listed(paas)

    readded = add(paas, "db", "postgres-16")
    assert "reattached" in readded.stdout
    assert dsn(paas, "db") == url, "the DSN (credentials and host port) survives re-creation"
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone()[0] == 100

    purged = paas("svc", "rm", "db", "--env", "production", "--purge", "--yes")
    assert purged.exit_code == 0, purged.output
    final_backup = Path(purged.stderr.split("Final backup: ")[1].split()[0])
    assert final_backup.is_file() and final_backup.stat().st_mode & 0o777 == 0o600
    assert json.loads(final_backup.read_bytes().split(b"\n", 1)[0])["template"] == "postgres-16"
    assert not engine.volumes.list(filters={"name": service["volume"]})
    fresh = add(paas, "db", "postgres-16")
    assert "reattached" not in fresh.stdout
    new_url = dsn(paas, "db")
    assert new_url != url
    with psycopg.connect(new_url) as connection:
        assert connection.execute("SELECT to_regclass('orders')").fetchone()[0] is None


def test_same_slug_in_two_envs_is_two_services(paas, engine):
    add(paas, "cache", "redis-7", "staging")
    add(paas, "cache", "redis-7", "production")
    staging, production = dsn(paas, "cache", "staging"), dsn(paas, "cache", "production")
    assert staging != production
    redis.Redis.from_url(staging).set("where", "staging")
    assert redis.Redis.from_url(production).get("where") is None
    rows = listed(paas)
    assert rows[("staging", "cache")]["container"] != rows[("production", "cache")]["container"]
    assert rows[("staging", "cache")]["volume"] != rows[("production", "cache")]["volume"]
    ambiguous = paas("svc", "dsn", "cache")
    assert ambiguous.exit_code == 4
    assert "staging, production" in ambiguous.stderr and ambiguous.stdout == ""
    # The network view names each service's own container.
    assert rows[("staging", "cache")]["container"] in dsn(paas, "cache", "staging", "--network")


def test_env_is_inferred_when_one_env_has_the_slug(paas, engine):
    add(paas, "cache", "redis-7", "staging")
    assert "@127.0.0.1:" in dsn(paas, "cache", "staging")
    result = paas("svc", "dsn", "cache")
    assert result.exit_code == 0 and result.stdout.strip() == dsn(paas, "cache", "staging")


@pytest.mark.parametrize("template", list(STANDIN_FOR))
def test_container_contract(paas, engine, template):
    add(paas, "svc1", template)
    row = listed(paas)[("production", "svc1")]
    shown = json.loads(paas("svc", "show", "svc1", "--json").stdout)
    container = engine.api.inspect_container(row["container"])
    assert container["Name"] == "/" + row["container"] == "/paas-svc-" + row["id"]
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert list(container["NetworkSettings"]["Networks"]) == ["paas-apps"]
    mounts = [(m["Type"], m["Name"], m["Destination"]) for m in container["Mounts"]]
    assert ("volume", row["volume"], shown["volume_path"]) in mounts
    bindings = container["HostConfig"]["PortBindings"]
    assert bindings, "the main port is published"
    for binding in bindings.values():
        assert [b["HostIp"] for b in binding] == ["127.0.0.1"]
    assert bindings[f"{shown['network_port']}/tcp"][0]["HostPort"] == str(row["host_port"])
    labels = container["Config"]["Labels"]
    assert labels["paas.slug"] == "svc1" and labels["paas.env"] == "production" and labels["paas.template"] == template
    url = dsn(paas, "svc1")
    secrets = [part for part in url.replace("@", ":").replace("/", ":").split(":") if len(part) >= 24]
    for secret in secrets:
        assert secret not in json.dumps(labels)
        assert secret not in json.dumps(shown)
        assert secret not in paas("svc", "list").stdout
        assert secret not in json.dumps(engine.api.inspect_volume(row["volume"]))
    assert row["status"] == "Ready"


def test_container_that_exits_is_failed_with_its_logs(paas, engine):
    # The PostgreSQL stand-in refuses to start without POSTGRES_PASSWORD, which mailpit's spec lacks.
    result = paas("svc", "add", "mail", "--template", "mailpit", "--image", POSTGRES_IMAGE, "--timeout", "30")
    assert result.exit_code == 6, result.output
    assert "container exited with code" in result.stderr
    assert "log lines" in result.stderr and "POSTGRES_PASSWORD" in result.stderr
    assert "Traceback" not in result.stderr
    assert listed(paas)[("development", "mail")]["status"] == "Failed"


def test_readiness_timeout_is_failed(paas, engine):
    # A Redis image under the MongoDB template never answers on 27017.
    result = paas("svc", "add", "docs", "--template", "mongodb-7", "--image", REDIS_IMAGE, "--timeout", "2")
    assert result.exit_code == 6, result.output
    assert "not ready after 2s" in result.stderr
    assert listed(paas)[("development", "docs")]["status"] == "Failed"


def test_image_that_cannot_be_pulled_leaves_nothing(paas, engine, isolated_home):
    result = paas("svc", "add", "cache", "--template", "redis-7", "--image", "127.0.0.1:1/paas-test/nothing:1")
    assert result.exit_code == 6, result.output
    assert "Could not pull image 127.0.0.1:1/paas-test/nothing:1" in result.stderr
    assert "Traceback" not in result.stderr
    assert listed(paas) == {}
    from tests.support.engine import profile_id

    assert not engine.containers.list(all=True, filters={"label": f"paas.profile={profile_id(isolated_home)}"})
    assert not engine.volumes.list(filters={"label": f"paas.profile={profile_id(isolated_home)}"})


def test_stop_start_restart_and_missing(paas, engine):
    add(paas, "cache", "redis-7")
    url = dsn(paas, "cache")
    assert paas("svc", "stop", "cache").exit_code == 0
    assert listed(paas)[("production", "cache")]["status"] == "Stopped"
    started = paas("svc", "start", "cache")
    assert started.exit_code == 0, started.output
    assert redis.Redis.from_url(url).ping()
    assert paas("svc", "restart", "cache").exit_code == 0
    assert listed(paas)[("production", "cache")]["status"] == "Ready"
    engine.api.remove_container(listed(paas)[("production", "cache")]["container"], force=True)
    assert listed(paas)[("production", "cache")]["status"] == "Missing"


def test_logs_and_audit(paas, paas_process, engine):
    add(paas, "cache", "redis-7")
    logs = paas_process("svc", "logs", "cache", "--tail", "5")
    assert logs.exit_code == 0, logs.output
    assert 0 < len(logs.stdout.splitlines()) <= 5
    dsn(paas, "cache")
    dsn(paas, "cache", "production", "--network")
    audit = json.loads(paas("audit", "--json").stdout)
    reveals = [a for a in audit if a["action"] == "reveal-dsn"]
    assert [r["detail"] for r in reveals] == ["view=host", "view=network"]
    assert all(r["slug"] == "cache" and r["env"] == "production" and r["os_user"] for r in reveals)


def test_network_view_reaches_the_service_from_a_container(paas, engine):
    add(paas, "cache", "redis-7")
    url = dsn(paas, "cache", "production", "--network")
    output = engine.containers.run(REDIS_IMAGE, ["redis-cli", "-u", url, "ping"], network="paas-apps", remove=True)
    assert output.strip() == b"PONG"


def test_duplicate_slug_is_refused(paas, engine):
    add(paas, "cache", "redis-7")
    again = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE)
    assert again.exit_code == 4 and "already exists" in again.stderr


def test_purge_needs_confirmation_when_not_interactive(paas, engine):
    add(paas, "cache", "redis-7")
    result = paas("svc", "rm", "cache", "--purge")
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert listed(paas)[("production", "cache")]["status"] == "Ready"


def test_purge_without_final_backup(paas, engine, isolated_home):
    add(paas, "cache", "redis-7")
    result = paas("svc", "rm", "cache", "--purge", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    assert "Final backup" not in result.stdout + result.stderr
    assert not list((isolated_home / "backups").glob("*")) if (isolated_home / "backups").exists() else True


def test_home_holds_no_plaintext_secret_and_only_private_files(paas, engine, isolated_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    add(paas, "db", "postgres-16")
    add(paas, "cache", "redis-7")
    secrets = [dsn(paas, slug).split(":")[2].split("@")[0] for slug in ("db", "cache")]
    assert all(len(secret) >= 24 for secret in secrets)
    assert paas("env", "export", "--env", "production", "-o", str(isolated_home / "exported.env")).exit_code == 0
    assert paas("svc", "rm", "cache", "--purge", "--yes").exit_code == 0  # leaves a final backup in the home
    assert paas("svc", "rm", "db").exit_code == 0
    for path in isolated_home.rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {mode:o}"
        if path.is_file() and path.name not in ("exported.env",):
            content = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, f"{secret[:4]}... in plaintext in {path}"


def test_rm_leaves_no_anonymous_volume_behind(paas, engine):
    # The Redis stand-in declares VOLUME /data; under the MongoDB template the data volume is
    # mounted at /data/db, so /data gets an anonymous volume, as mongo:7's /data/configdb does.
    result = paas("svc", "add", "docs", "--template", "mongodb-7", "--image", REDIS_IMAGE, "--no-wait")
    assert result.exit_code == 0, result.output
    container = engine.api.inspect_container(listed(paas)[("development", "docs")]["container"])
    anonymous = [m["Name"] for m in container["Mounts"] if m["Type"] == "volume" and m["Destination"] == "/data"]
    assert anonymous, "the setup must produce an anonymous volume"
    assert paas("svc", "rm", "docs").exit_code == 0
    assert not engine.volumes.list(filters={"name": anonymous[0]})
    assert engine.volumes.get(container["Name"].lstrip("/")), "the named data volume is kept"
