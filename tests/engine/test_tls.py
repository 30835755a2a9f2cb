"""TLS on every connection (issue 22): real servers (the stand-ins' Debian PostgreSQL, MariaDB,
Redis) with certificates from the profile's CA, real clients verifying them.

Each client gets nothing but what `paas env export` (or `svc dsn`) printed; a client trusting
another CA (trustme) is refused, plaintext to a `required` service is refused.
"""

from __future__ import annotations

import io
import json
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
