"""TLS on every connection (issue 22): real servers (the stand-ins' Debian PostgreSQL, MariaDB,
Redis) with certificates from the profile's CA, real clients verifying them.

Each client gets nothing but what `paas env export` (or `svc dsn`) printed; a client trusting
another CA (trustme) is refused, plaintext to a `required` service is refused.
"""

from __future__ import annotations

import io
import json
import socket
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import redis
from dotenv import dotenv_values

from tests.support.images import MARIADB_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE


def add(paas, slug, template, image, *extra):
    result = paas("svc", "add", slug, "--template", template, "--env", "production", "--image", image, *extra)
    assert result.exit_code == 0, result.output
    return result


def exported(paas, *extra) -> dict[str, str]:
    result = paas("env", "export", "--env", "production", *extra)
    assert result.exit_code == 0, result.output
    return dotenv_values(stream=io.StringIO(result.stdout))


def exported_json(paas, *extra) -> dict[str, str]:
    result = paas("env", "export", "--env", "production", "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def other_ca_file(tmp_path: Path) -> str:
    import trustme

    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def tls_postgres(paas, engine):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE, "--tls", "--url-scheme", "postgresql")
    return exported_json(paas, "--only", "db")


def test_postgres_psycopg_and_sqlalchemy_verify_full(tls_postgres, tmp_path):
    import sqlalchemy

    # The host timer that renews the certificate was installed with the service (tests: their own cron.d).
    assert [path.name for path in (tmp_path / "cron.d").iterdir()], "no host timer"

    url = tls_postgres["DB_URL"]
    ca_file = tls_postgres["DB_CA_CERT_FILE"]
    assert f"sslmode=verify-full&sslrootcert={ca_file}" in url
    assert Path(ca_file).read_text() == tls_postgres["DB_CA_CERT"]
    with psycopg.connect(url) as conn:
        assert conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone() == (True,)
    db = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with db.connect() as connection:
        assert connection.execute(sqlalchemy.text("select current_user")).scalar() == "app"
    db.dispose()
    # A client that trusts another CA is refused; plaintext to a `required` service is refused.
    other = other_ca_file(tmp_path)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(url.replace(ca_file, other))
    with pytest.raises(psycopg.OperationalError, match="no encryption|pg_hba"):
        psycopg.connect(url.split("?")[0] + "?sslmode=disable")


def test_postgres_dotenv_export_keeps_the_file_and_leaves_out_the_pem(paas, tls_postgres):
    variables = exported(paas, "--only", "db")
    assert variables["DB_CA_CERT_FILE"] == tls_postgres["DB_CA_CERT_FILE"]
    assert "DB_CA_CERT" not in variables  # one line per value: the PEM goes in json and shell only
    with psycopg.connect(variables["DB_URL"]) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


# -- Redis ------------------------------------------------------------------------------------


def test_redis_rediss_url_with_the_ca_file(paas, engine, tmp_path):
    add(paas, "cache", "redis-7", REDIS_IMAGE, "--tls")
    variables = exported_json(paas, "--only", "cache")
    url = variables["CACHE_URL"]
    assert url.startswith("rediss://default:") and f"ssl_ca_certs={variables['CACHE_CA_CERT_FILE']}" in url
    client = redis.Redis.from_url(url)
    assert client.set("k", "v") and client.get("k") == b"v"
    client.close()
    # Another CA is refused; so is plaintext (the port speaks TLS only).
    refused = redis.Redis.from_url(url.replace(variables["CACHE_CA_CERT_FILE"], other_ca_file(tmp_path)))
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        refused.ping()
    plain = redis.Redis.from_url("redis://" + url.split("://", 1)[1].split("?")[0], socket_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError):
        plain.ping()


# -- MariaDB ----------------------------------------------------------------------------------


def test_mariadb_pymysql_with_ssl_verify(paas, engine, tmp_path):
    import pymysql

    add(paas, "sql", "mariadb-11", MARIADB_IMAGE, "--tls")
    variables = exported_json(paas, "--only", "sql")
    assert variables["SQL_URL"].endswith(f"?ssl_ca={variables['SQL_CA_CERT_FILE']}")
    parts = dict(host=variables["SQL_HOST"], port=int(variables["SQL_PORT"]), user=variables["SQL_USER"],
                 password=variables["SQL_PASSWORD"], database=variables["SQL_DATABASE"])
    with pymysql.connect(**parts, ssl_ca=variables["SQL_CA_CERT_FILE"], ssl_verify_cert=True,
                         ssl_verify_identity=True) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW STATUS LIKE 'Ssl_version'")
        assert cursor.fetchone()[1].startswith("TLS")
    import sqlalchemy

    db = sqlalchemy.create_engine(variables["SQL_URL"].replace("mysql://", "mysql+pymysql://", 1))
    with db.connect() as connection:
        assert connection.execute(sqlalchemy.text("SHOW STATUS LIKE 'Ssl_cipher'")).fetchone()[1]
    db.dispose()
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(**parts, ssl_ca=other_ca_file(tmp_path), ssl_verify_cert=True)
    with pytest.raises(pymysql.err.OperationalError, match="secure transport|Access denied"):
        pymysql.connect(**parts, ssl_disabled=True)  # plaintext: require_secure_transport


# -- what keeps working on a TLS service --------------------------------------------------------


def dsn(paas, slug, env="production", *extra):
    return ok(paas("svc", "dsn", slug, "--env", env, *extra)).stdout.strip()


def test_postgres_backup_restore_verify_clone_upgrade_connect_rotate(paas, engine, tmp_path):
    from tests.support.cli import run_paas_process

    add(paas, "db", "postgres-16", POSTGRES_IMAGE, "--tls")
    url = dsn(paas, "db")
    with psycopg.connect(url) as conn:
        conn.execute("create table t (n int)")
        conn.execute("insert into t values (1), (2)")
    backup = tmp_path / "db.pgdump"
    ok(paas("svc", "backup", "db", "--env", "production", "-o", str(backup)))
    with psycopg.connect(url) as conn:
        conn.execute("delete from t")
    ok(paas("svc", "restore", "db", str(backup), "--env", "production", "--yes"))
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (2,)
    ok(paas("backup", "now", "db", "--env", "production"))
    verified = json.loads(ok(paas("backup", "verify", "db", "--env", "production", "--json")).stdout)
    assert verified["ok"], verified
    # The clone is a TLS service too, with its own certificate from the same CA.
    ok(paas("svc", "clone", "db", "--env", "production", "--to-env", "staging"))
    copy_url = dsn(paas, "db", "staging")
    assert "sslmode=verify-full" in copy_url
    with psycopg.connect(copy_url) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (2,)
        assert conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone() == (True,)
    # Upgrade to another image of the same major: still TLS, data kept.
    same_major = f"paas-test/postgres:tls-{tmp_path.name[-6:]}"
    engine.images.get(POSTGRES_IMAGE).tag(*same_major.split(":"))
    try:
        ok(paas("svc", "upgrade", "db", "--env", "production", "--image", same_major, "--yes"))
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from t").fetchone() == (2,)
        connected = run_paas_process("svc", "connect", "db", "--env", "production",
                                     input="select 'tls ' || ssl from pg_stat_ssl where pid = pg_backend_pid();\n")
        assert connected.exit_code == 0, connected.output
        assert "tls t" in connected.stdout
        ok(paas("svc", "rotate-password", "db", "--env", "production"))
        new_url = dsn(paas, "db")
        assert new_url != url
        with psycopg.connect(new_url) as conn:
            assert conn.execute("select count(*) from t").fetchone() == (2,)
    finally:
        for slug, env in (("db", "production"), ("db", "staging")):
            paas("svc", "rm", slug, "--env", env, "--purge", "--yes", "--no-backup")
        engine.images.remove(same_major, force=True)


def test_redis_backup_restore_verify_connect_rotate(paas, engine, tmp_path):
    from tests.support.cli import run_paas_process

    add(paas, "cache", "redis-7", REDIS_IMAGE, "--tls")
    client = redis.Redis.from_url(dsn(paas, "cache"))
    client.set("k", "v")
    backup = tmp_path / "cache.rdb"
    ok(paas("svc", "backup", "cache", "--env", "production", "-o", str(backup)))
    client.delete("k")
    client.close()
    ok(paas("svc", "restore", "cache", str(backup), "--env", "production", "--yes"))
    assert redis.Redis.from_url(dsn(paas, "cache")).get("k") == b"v"
    ok(paas("backup", "now", "cache", "--env", "production"))
    verified = json.loads(ok(paas("backup", "verify", "cache", "--env", "production", "--json")).stdout)
    assert verified["ok"], verified
    connected = run_paas_process("svc", "connect", "cache", "--env", "production", input="GET k\n")
    assert connected.exit_code == 0, connected.output
    assert connected.stdout.split() == ["v"]
    ok(paas("svc", "rotate-password", "cache", "--env", "production"))
    assert redis.Redis.from_url(dsn(paas, "cache")).get("k") == b"v"


# -- svc update --tls, renewal ------------------------------------------------------------------


def served_certificate(host: str, port: int, ca_file: str, starttls_postgres: bool = False) -> dict:
    """The certificate a TLS server presents (verified against `ca_file`)."""
    context = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection((host, port), timeout=10) as raw:
        if starttls_postgres:
            raw.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
            assert raw.recv(1) == b"S"
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert()


def test_update_tls_off_optional_required_round_trip(paas, engine, tmp_path):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    plain = dsn(paas, "db")
    assert "sslmode" not in plain
    timer = tmp_path / "cron.d"  # the tests' cron folder: the host timer renews TLS certificates
    assert list(timer.iterdir()) == [], "no TLS service, no schedule: no timer"
    with psycopg.connect(plain + "?sslmode=disable") as conn:
        conn.execute("create table t (n int)")
    updated = json.loads(ok(paas("svc", "update", "db", "--env", "production", "--tls", "optional", "--json")).stdout)
    assert updated["tls"] == "optional" and updated["recreated"]
    assert len(list(timer.iterdir())) == 1, "turning TLS on installs the renewal timer"
    url = dsn(paas, "db")
    with psycopg.connect(url) as conn:  # verified TLS
        assert conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone() == (True,)
    with psycopg.connect(plain + "?sslmode=disable") as conn:  # optional: plaintext still allowed
        assert conn.execute("select count(*) from t").fetchone() == (0,)
    ok(paas("svc", "update", "db", "--env", "production", "--tls", "required"))
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(plain + "?sslmode=disable")
    with psycopg.connect(dsn(paas, "db")) as conn:
        assert conn.execute("select count(*) from t").fetchone() == (0,)
    ok(paas("svc", "update", "db", "--env", "production", "--tls", "off"))
    assert dsn(paas, "db") == plain
    assert list(timer.iterdir()) == [], "the last TLS service gone to plaintext: the timer goes"
    with psycopg.connect(plain + "?sslmode=disable") as conn:
        assert conn.execute("select count(*) from t").fetchone() == (0,)
    refused = paas("svc", "update", "db", "--env", "production", "--tls", "sometimes")
    assert refused.exit_code == 2 and "required, optional, off" in refused.stderr
    ok(paas("svc", "update", "db", "--env", "production", "--tls", "required"))
    assert len(list(timer.iterdir())) == 1
    ok(paas("svc", "rm", "db", "--env", "production"))
    assert list(timer.iterdir()) == [], "the last TLS service removed: the timer goes"


def test_renewal_by_run_due_reloads_without_a_restart(paas, engine, monkeypatch):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE, "--tls")
    add(paas, "cache", "redis-7", REDIS_IMAGE, "--tls")
    variables = exported_json(paas)
    ca_file = variables["DB_CA_CERT_FILE"]
    shown = {slug: json.loads(ok(paas("svc", "show", slug, "--env", "production", "--json")).stdout) for slug in ("db", "cache")}
    started = {slug: engine.api.inspect_container(info["container"])["State"]["StartedAt"] for slug, info in shown.items()}
    before = {"db": served_certificate("127.0.0.1", int(variables["DB_PORT"]), ca_file, True),
              "cache": served_certificate("127.0.0.1", int(variables["CACHE_PORT"]), ca_file)}
    session = psycopg.connect(variables["DB_URL"])  # an open connection survives the renewal

    # Nothing to renew today; doctor is content. 80 days on, doctor warns (under 14 days left).
    quiet = json.loads(ok(paas("backup", "run-due", "--json")).stdout)
    assert quiet["tls_renewed"] == []
    assert any(f["check"] == "tls" and f["ok"] for f in json.loads(paas("doctor", "--json").stdout)["findings"])
    monkeypatch.setenv("PAAS_NOW", (datetime.now(timezone.utc) + timedelta(days=80)).isoformat())
    warned = paas("doctor", "--json")
    tls = [f for f in json.loads(warned.stdout)["findings"] if f["check"] == "tls"]
    assert warned.exit_code != 0 and len(tls) == 2 and all("expires in 10 days" in f["message"] for f in tls), tls
    monkeypatch.delenv("PAAS_NOW")
    later = json.loads(ok(paas("backup", "run-due", "--json", "--now", "2099-01-01T00:00:00Z")).stdout)
    assert sorted((r["where"], r["reloaded"], r["error"]) for r in later["tls_renewed"]) == [
        ("default/production/cache", True, None), ("default/production/db", True, None)]
    after = {"db": served_certificate("127.0.0.1", int(variables["DB_PORT"]), ca_file, True),
             "cache": served_certificate("127.0.0.1", int(variables["CACHE_PORT"]), ca_file)}
    for slug in ("db", "cache"):
        assert after[slug]["serialNumber"] != before[slug]["serialNumber"], slug
        assert engine.api.inspect_container(shown[slug]["container"])["State"]["StartedAt"] == started[slug], "no restart"
    assert session.execute("select 1").fetchone() == (1,)
    session.close()
    assert redis.Redis.from_url(variables["CACHE_URL"]).ping()


# -- paas serve --tls auto ----------------------------------------------------------------------


def test_serve_tls_auto_is_https_verified_by_the_profiles_ca(tmp_path, isolated_home):
    import httpx

    from tests.support.api_server import Server

    server = Server(isolated_home, "--tls", "auto").start()
    try:
        token = server.token("ops", "admin")
        ca_file = str(isolated_home / "tls" / "ca.crt")
        url = f"https://127.0.0.1:{server.port}/api/me"
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, verify=ca_file, timeout=10)
        assert answer.status_code == 200 and answer.json()["name"] == "ops"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(url, verify=other_ca_file(tmp_path), timeout=10)
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the HTTPS port
            httpx.get(f"http://127.0.0.1:{server.port}/api/me", timeout=10)
        assert "certificate from the profile's CA" in server.output()
        assert oct((isolated_home / "tls" / "serve.key").stat().st_mode & 0o777) == "0o600"
    finally:
        server.stop()


def test_hot_paths_of_a_tls_service_load_no_x509(paas, engine, isolated_home):
    import subprocess
    import sys

    add(paas, "db", "postgres-16", POSTGRES_IMAGE, "--tls")
    for argv in (["svc", "dsn", "db", "--env", "production"], ["env", "export", "--env", "production"],
                 ["svc", "list", "--json"]):
        code = ("import sys; from paas_svc.cli.main import run; code = run(%r); "
                "print(sorted(sys.modules), file=sys.stderr); sys.exit(code)" % argv)
        completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert completed.returncode == 0, completed.stderr[-2000:]
        modules = completed.stderr.strip().splitlines()[-1]
        assert "cryptography.x509" not in modules and "asymmetric" not in modules, argv
        assert "paas_svc.usecases.tls" not in modules, argv
    assert "sslmode=verify-full" in ok(paas("svc", "dsn", "db", "--env", "production")).stdout


def test_run_network_and_docker_export_make_the_ca_reachable_in_the_apps_container(paas, engine, paas_process):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE, "--tls")
    docker_format = ok(paas("env", "export", "--env", "production", "--network", "--format", "docker")).stdout
    mount_line = docker_format.splitlines()[0]
    assert mount_line.startswith("# docker run -v ") and mount_line.split()[4].endswith(":/paas-tls/ca.crt:ro")
    assert "DB_CA_CERT_FILE=/paas-tls/ca.crt" in docker_format.splitlines()
    # The app: psql in a container on the network, given DB_URL and the CA mount by `paas run --network`.
    script = ('exec docker run --rm --network "$PAAS_NETWORK" -v "$PAAS_CA_MOUNT" -e DB_URL --entrypoint psql '
              f'{POSTGRES_IMAGE} "$DB_URL" -Atc "select ssl from pg_stat_ssl where pid = pg_backend_pid()"')
    result = paas_process("run", "--env", "production", "--network", "--", "sh", "-c", script)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "t"


def test_mariadb_renewal_reloads_with_flush_ssl(paas, engine):
    import pymysql

    add(paas, "sql", "mariadb-11", MARIADB_IMAGE, "--tls")
    variables = exported_json(paas, "--only", "sql")
    parts = dict(host=variables["SQL_HOST"], port=int(variables["SQL_PORT"]), user=variables["SQL_USER"],
                 password=variables["SQL_PASSWORD"], database=variables["SQL_DATABASE"],
                 ssl_ca=variables["SQL_CA_CERT_FILE"], ssl_verify_identity=True)
    container = json.loads(ok(paas("svc", "show", "sql", "--env", "production", "--json")).stdout)["container"]
    started = engine.api.inspect_container(container)["State"]["StartedAt"]

    def served_serial() -> str:
        with pymysql.connect(**parts) as conn, conn.cursor() as cursor:
            cursor.execute("SHOW STATUS LIKE 'Ssl_server_not_after'")
            not_after = cursor.fetchone()[1]
            cursor.execute("SELECT 1")
            return not_after + "/" + str(conn._sock.getpeercert()["serialNumber"])  # noqa: SLF001 - the TLS socket

    before = served_serial()
    later = json.loads(ok(paas("backup", "run-due", "--json", "--now", "2099-01-01T00:00:00Z")).stdout)
    assert [(r["where"], r["reloaded"]) for r in later["tls_renewed"]] == [("default/production/sql", True)], later
    assert served_serial() != before
    assert engine.api.inspect_container(container)["State"]["StartedAt"] == started, "no restart"
