"""Real clients connect with nothing but what `paas env export` printed.

Each test exports the environment as dotenv, reads it back with python-dotenv (what an app
does), and hands the variables to the client library its ecosystem uses. Servers are the real
engines where one exists here (PostgreSQL, Redis); MongoDB, Meilisearch and SMTP are the
stand-in's protocol fakes, enough for the clients' own handshakes.
"""

from __future__ import annotations

import io
import json
import smtplib
from email.message import EmailMessage

import psycopg
import pytest
import redis
from dotenv import dotenv_values

from tests.conftest import MINIO_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, STANDIN_IMAGE


def add(paas, slug, template, image, *extra):
    result = paas("svc", "add", slug, "--template", template, "--env", "production", "--image", image, *extra)
    assert result.exit_code == 0, result.output


def exported(paas, *extra) -> dict[str, str]:
    result = paas("env", "export", "--env", "production", *extra)
    assert result.exit_code == 0, result.output
    return dotenv_values(stream=io.StringIO(result.stdout))


@pytest.fixture
def postgres_env(paas, engine):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE, "--url-scheme", "postgresql")
    return exported(paas, "--only", "db")


def test_sqlalchemy_2_connects_with_the_postgresql_url(postgres_env):
    import sqlalchemy

    assert postgres_env["DB_URL"].startswith("postgresql://")  # SQLAlchemy refuses postgres://
    engine = sqlalchemy.create_engine(postgres_env["DB_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("select current_user")).scalar() == "app"
    engine.dispose()
    # And the plain URL names a dialect SQLAlchemy knows (it would load psycopg2, not installed here).
    assert sqlalchemy.engine.make_url(postgres_env["DB_URL"]).get_backend_name() == "postgresql"


def test_psycopg_connects_with_the_url_and_with_the_parts(postgres_env):
    with psycopg.connect(postgres_env["DB_URL"]) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    with psycopg.connect(host=postgres_env["DB_HOST"], port=postgres_env["DB_PORT"], user=postgres_env["DB_USER"],
                         password=postgres_env["DB_PASSWORD"], dbname=postgres_env["DB_DATABASE"]) as conn:
        assert conn.execute("select current_database()").fetchone() == ("db",)


def test_dj_database_url_reads_the_url(postgres_env):
    import dj_database_url

    config = dj_database_url.parse(postgres_env["DB_URL"])
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], str(config["PORT"]), config["USER"], config["PASSWORD"], config["NAME"]) == (
        postgres_env["DB_HOST"], postgres_env["DB_PORT"], postgres_env["DB_USER"], postgres_env["DB_PASSWORD"], "db")
    with psycopg.connect(host=config["HOST"], port=config["PORT"], user=config["USER"], password=config["PASSWORD"],
                         dbname=config["NAME"]) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_url_scheme_changes_later_without_a_restart(paas, engine):
    add(paas, "db", "postgres-16", POSTGRES_IMAGE)
    assert exported(paas)["DB_URL"].startswith("postgres://")  # the default stays
    container = json.loads(paas("svc", "show", "db", "--json").stdout)["container"]
    started = engine.api.inspect_container(container)["State"]["StartedAt"]
    result = paas("svc", "update", "db", "--url-scheme", "postgresql")
    assert result.exit_code == 0, result.output
    assert exported(paas)["DB_URL"].startswith("postgresql://")
    assert paas("svc", "dsn", "db").stdout.startswith("postgresql://")
    assert engine.api.inspect_container(container)["State"]["StartedAt"] == started
    refused = paas("svc", "add", "cache", "--template", "redis-7", "--url-scheme", "postgresql")
    assert refused.exit_code == 2 and "PostgreSQL" in refused.stderr


def test_redis_py_with_the_url_and_with_the_parts(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE)
    variables = exported(paas)
    redis.Redis.from_url(variables["CACHE_URL"]).set("k", "v")
    client = redis.Redis(host=variables["CACHE_HOST"], port=int(variables["CACHE_PORT"]),
                         username=variables["CACHE_USER"], password=variables["CACHE_PASSWORD"])
    assert client.get("k") == b"v"


def test_pymongo_reads_the_url_and_pings(paas, engine):
    import pymongo
    from pymongo.uri_parser import parse_uri

    add(paas, "docs", "mongodb-7", STANDIN_IMAGE)
    variables = exported(paas)
    parsed = parse_uri(variables["DOCS_URL"])
    assert parsed["username"] == variables["DOCS_USER"] and parsed["password"] == variables["DOCS_PASSWORD"]
    assert parsed["options"].get("authSource") == "admin"
    assert parsed["nodelist"] == [(variables["DOCS_HOST"], int(variables["DOCS_PORT"]))]
    # The stand-in does not advertise its mechanisms in `hello` as mongod does, so name the one it has.
    client = pymongo.MongoClient(variables["DOCS_URL"], serverSelectionTimeoutMS=5000, authMechanism="SCRAM-SHA-256")
    try:
        assert client.admin.command("ping")["ok"] == 1
    finally:
        client.close()


def test_meilisearch_client_with_the_url_and_the_api_key(paas, engine):
    import meilisearch

    add(paas, "search", "meilisearch-1.10", STANDIN_IMAGE)
    variables = exported(paas)
    assert "@" not in variables["SEARCH_URL"]  # no client reads credentials from the URL
    client = meilisearch.Client(variables["SEARCH_URL"], variables["SEARCH_API_KEY"])
    assert client.get_keys().total == 0  # an authenticated call: the stand-in checks the Bearer key
    with pytest.raises(meilisearch.errors.MeilisearchApiError):
        meilisearch.Client(variables["SEARCH_URL"], "wrong-key-wrong-key").get_keys()


def test_smtplib_sends_through_the_smtp_variables(paas, engine):
    add(paas, "mail", "mailpit", STANDIN_IMAGE)
    variables = exported(paas)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "app@example.test", "user@example.test", "hello"
    message.set_content("sent with MAIL_HOST and MAIL_PORT")
    with smtplib.SMTP(variables["MAIL_HOST"], int(variables["MAIL_PORT"]), timeout=10) as smtp:
        assert smtp.send_message(message) == {}


def test_only_limits_the_export_and_unknown_slugs_are_not_found(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE)
    add(paas, "queue", "redis-7", REDIS_IMAGE)
    result = paas("env", "export", "--env", "production", "--only", "queue", "--format", "json")
    assert set(json.loads(result.stdout)) == {"QUEUE_URL", "QUEUE_HOST", "QUEUE_PORT", "QUEUE_USER", "QUEUE_PASSWORD"}
    missing = paas("env", "export", "--env", "production", "--only", "queue,nope")
    assert missing.exit_code == 3 and "'nope'" in missing.stderr and missing.stdout == ""


def test_dsn_stays_one_line_and_dsn_all_prints_every_variable(paas, engine):
    add(paas, "cache", "redis-7", REDIS_IMAGE)
    one = paas("svc", "dsn", "cache")
    assert one.exit_code == 0 and one.stdout.count("\n") == 1 and one.stdout.startswith("redis://")
    every = paas("svc", "dsn", "cache", "--all")
    assert every.exit_code == 0, every.output
    assert dotenv_values(stream=io.StringIO(every.stdout)) == exported(paas)
    shell = paas("svc", "env", "cache", "--format", "shell")
    assert shell.exit_code == 0 and shell.stdout.startswith("export CACHE_URL='redis://")


def test_boto3_uploads_and_downloads_through_the_s3_variables(paas, engine):
    import boto3

    add(paas, "files", "minio", MINIO_IMAGE)
    variables = exported(paas)
    s3 = boto3.client("s3", endpoint_url=variables["FILES_ENDPOINT"], aws_access_key_id=variables["FILES_ACCESS_KEY_ID"],
                      aws_secret_access_key=variables["FILES_SECRET_ACCESS_KEY"], region_name=variables["FILES_REGION"])
    bucket = variables["FILES_BUCKET"]
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]  # created by `svc add`
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello from paas")
    assert s3.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello from paas"


def test_s3_bucket_is_created_by_svc_wait_after_no_wait(paas, engine):
    import boto3

    add(paas, "up", "minio", MINIO_IMAGE, "--no-wait")
    assert paas("svc", "wait", "up", "--env", "production").exit_code == 0
    variables = exported(paas)
    s3 = boto3.client("s3", endpoint_url=variables["UP_ENDPOINT"], aws_access_key_id=variables["UP_ACCESS_KEY_ID"],
                      aws_secret_access_key=variables["UP_SECRET_ACCESS_KEY"], region_name=variables["UP_REGION"])
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["up-files"]
