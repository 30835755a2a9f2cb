"""Real clients connect with nothing but what `paas env export` printed.

Each test exports the environment as dotenv, reads it back with python-dotenv (what an app
does), and hands the variables to the client library its ecosystem uses. Servers are the real
engines where one exists here (PostgreSQL, Redis, MariaDB, RabbitMQ, and moto's S3 API as the
MinIO stand-in); MongoDB, Meilisearch and SMTP are the stand-in's protocol fakes, enough for
the clients' own handshakes.
"""

from __future__ import annotations

import io
import json
import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
import redis
from dotenv import dotenv_values

from tests.support.images import MARIADB_IMAGE, MINIO_IMAGE, POSTGRES_IMAGE, RABBITMQ_IMAGE, REDIS_IMAGE, STANDIN_IMAGE


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


def test_pymysql_with_the_parts_and_the_url(paas, engine):
    import pymysql

    add(paas, "db", "mariadb-11", MARIADB_IMAGE)
    variables = exported(paas)
    assert set(variables) == {"DB_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_DATABASE"}
    with pymysql.connect(host=variables["DB_HOST"], port=int(variables["DB_PORT"]), user=variables["DB_USER"],
                         password=variables["DB_PASSWORD"], database=variables["DB_DATABASE"], autocommit=True) as conn:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE t (v VARCHAR(8))")
            cursor.execute("INSERT INTO t VALUES ('from env')")
    url = urlsplit(variables["DB_URL"])  # what SQLAlchemy's mysql+pymysql:// and dj-database-url take apart
    assert url.scheme == "mysql"
    with pymysql.connect(host=url.hostname, port=url.port, user=unquote(url.username), password=unquote(url.password),
                         database=url.path.lstrip("/")) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT v FROM t")
        assert cursor.fetchall() == (("from env",),)


def test_sqlalchemy_2_with_pymysql_on_the_mysql_url(paas, engine):
    import sqlalchemy

    add(paas, "db", "mariadb-11", MARIADB_IMAGE)
    url = exported(paas)["DB_URL"]
    # mysql:// names SQLAlchemy's mysql dialect; its default driver is mysqlclient, so name PyMySQL.
    assert sqlalchemy.engine.make_url(url).get_backend_name() == "mysql"
    database = sqlalchemy.create_engine(url.replace("mysql://", "mysql+pymysql://", 1))
    with database.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT CURRENT_USER()")).scalar() == "app@%"
    database.dispose()


def test_dj_database_url_reads_the_mysql_url(paas, engine):
    import dj_database_url

    add(paas, "db", "mariadb-11", MARIADB_IMAGE)
    variables = exported(paas)
    config = dj_database_url.parse(variables["DB_URL"])
    assert config["ENGINE"] == "django.db.backends.mysql"
    assert (config["HOST"], str(config["PORT"]), config["USER"], config["PASSWORD"], config["NAME"]) == (
        variables["DB_HOST"], variables["DB_PORT"], variables["DB_USER"], variables["DB_PASSWORD"], variables["DB_DATABASE"])


def test_pika_publishes_and_consumes_with_the_amqp_url_and_the_parts(paas, engine):
    import pika

    add(paas, "bus", "rabbitmq-4", RABBITMQ_IMAGE)
    variables = exported(paas)
    assert set(variables) == {"BUS_URL", "BUS_HOST", "BUS_PORT", "BUS_USER", "BUS_PASSWORD"}
    # The RabbitMQ URI spec (and amqplib, Node's client): the vhost is the unescaped path after
    # the first "/", so a bare trailing "/" asks for a vhost named "" that does not exist.
    assert unquote(urlsplit(variables["BUS_URL"]).path[1:]) == "/"
    connection = pika.BlockingConnection(pika.URLParameters(variables["BUS_URL"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("jobs", durable=True)
        channel.basic_publish("", "jobs", b"job 1", pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()
    parts = pika.ConnectionParameters(host=variables["BUS_HOST"], port=int(variables["BUS_PORT"]),
                                      credentials=pika.PlainCredentials(variables["BUS_USER"], variables["BUS_PASSWORD"]))
    connection = pika.BlockingConnection(parts)
    try:
        method, _, body = connection.channel().basic_get("jobs", auto_ack=True)
        assert method is not None and body == b"job 1"
    finally:
        connection.close()
    wrong = pika.URLParameters(variables["BUS_URL"].replace(variables["BUS_PASSWORD"], "wrong-password"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(wrong)


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
