"""TLS on the real engine for RabbitMQ, MongoDB, MinIO, Meilisearch, Mailpit and a user
template (issue 22), each with its real client verifying against the profile's CA (the
{SLUG}_CA_CERT_FILE that `env export` gives apps): pika amqps, pymongo tls=true, boto3
verify=PATH, an https client (httpx), smtplib STARTTLS. A client trusting another CA
(trustme) is refused, plaintext to a `required` service is refused, and backup + restore
keep working where the stand-in can do them (RabbitMQ, MinIO, Mailpit: volume archives;
Meilisearch: dumps over HTTPS; the MongoDB stand-in has no mongodump)."""

from __future__ import annotations

import json
import smtplib
import ssl
import textwrap

import httpx
import pika
import pymongo
import pytest
import trustme

from tests.support.cli import run_paas
from tests.support.images import MINIO_IMAGE, RABBITMQ_IMAGE, STANDIN_IMAGE
from tests.support.kinds import add, backup, dsn, restore


def variables(slug: str, env: str = "production") -> dict[str, str]:
    result = run_paas("env", "export", "--env", env, "--format", "json")
    assert result.exit_code == 0, result.output
    everything = json.loads(result.stdout)
    prefix = slug.upper().replace("-", "_") + "_"
    return {name[len(prefix):]: value for name, value in everything.items() if name.startswith(prefix)}


def other_ca_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    trustme.CA().configure_trust(context)
    return context


@pytest.fixture
def other_ca_file(tmp_path):
    path = tmp_path / "other-ca.crt"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


# -- RabbitMQ: amqps with pika ---------------------------------------------------------------------

def amqp_connection(url: str, context: ssl.SSLContext | None) -> pika.BlockingConnection:
    parameters = pika.URLParameters(url)
    if context is not None:
        parameters.ssl_options = pika.SSLOptions(context, parameters.host)
    return pika.BlockingConnection(parameters)


def test_rabbitmq_required_speaks_amqps_verified_by_the_profile_ca_and_keeps_backups(engine, tmp_path):
    add("bus", "rabbitmq-4", RABBITMQ_IMAGE, "production", "--tls")
    found = variables("bus")
    url = found["URL"]
    assert url.startswith("amqps://app:") and url.endswith("/%2F")
    trusted = ssl.create_default_context(cafile=found["CA_CERT_FILE"])
    with amqp_connection(url, trusted) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("jobs", durable=True)
        channel.basic_publish("", "jobs", b"job 1", pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent))
    with pytest.raises(ssl.SSLCertVerificationError):
        amqp_connection(url, other_ca_context())
    with pytest.raises(pika.exceptions.AMQPConnectionError):  # plaintext AMQP to the TLS-only port
        amqp_connection("amqp://" + url.split("://", 1)[1], None)

    archive = tmp_path / "bus.tar"
    backup("bus", archive)
    with amqp_connection(url, trusted) as connection:
        connection.channel().basic_publish("", "jobs", b"job 2")
    restore("bus", archive)
    with amqp_connection(variables("bus")["URL"], trusted) as connection:  # TLS again in the new container
        channel = connection.channel()
        bodies = []
        while (message := channel.basic_get("jobs", auto_ack=True))[0] is not None:
            bodies.append(message[2])
    assert bodies == [b"job 1"]


def test_rabbitmq_refuses_optional_tls_and_changes_nothing(engine):
    add("bus", "rabbitmq-4", RABBITMQ_IMAGE, "production", "--tls")
    result = run_paas("svc", "update", "bus", "--env", "production", "--tls", "optional")
    assert result.exit_code == 2 and "TLS or plaintext on a port, not both" in result.stderr, result.output
    assert "--tls required" in result.stderr
    assert variables("bus")["URL"].startswith("amqps://")  # still TLS only


# -- MongoDB: pymongo with tls=true&tlsCAFile -------------------------------------------------------------

def test_mongodb_required_answers_pymongo_over_tls_only_and_optional_takes_both(engine, other_ca_file):
    add("docs", "mongodb-7", STANDIN_IMAGE, "production", "--tls")
    url = variables("docs")["URL"]
    options = pymongo.uri_parser.parse_uri(url)["options"]
    assert options["tls"] is True and options["tlsCAFile"] == variables("docs")["CA_CERT_FILE"]
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000, authMechanism="SCRAM-SHA-256")
    assert client.admin.command("ping")["ok"] == 1.0
    client.close()
    plain = url.split("&tls=")[0]
    for refused in (url.replace(options["tlsCAFile"], other_ca_file), plain):
        client = pymongo.MongoClient(refused, serverSelectionTimeoutMS=2000, authMechanism="SCRAM-SHA-256")
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):
            client.admin.command("ping")
        client.close()

    # optional (preferTLS): TLS and plaintext on the one port; off: plaintext and the plain URL
    result = run_paas("svc", "update", "docs", "--env", "production", "--tls", "optional")
    assert result.exit_code == 0, result.output
    for either in (variables("docs")["URL"], plain):
        with pymongo.MongoClient(either, serverSelectionTimeoutMS=5000, authMechanism="SCRAM-SHA-256") as client:
            assert client.admin.command("ping")["ok"] == 1.0
    result = run_paas("svc", "update", "docs", "--env", "production", "--tls", "off")
    assert result.exit_code == 0, result.output
    assert variables("docs")["URL"] == plain and "CA_CERT_FILE" not in variables("docs")
    with pymongo.MongoClient(plain, serverSelectionTimeoutMS=5000, authMechanism="SCRAM-SHA-256") as client:
        assert client.admin.command("ping")["ok"] == 1.0


# -- MinIO: boto3 with the CA bundle ---------------------------------------------------------------------

def s3_client(url: str, verify):
    from urllib.parse import urlsplit

    import boto3

    parts = urlsplit(url)
    return boto3.client("s3", endpoint_url=f"{parts.scheme}://{parts.hostname}:{parts.port}", aws_access_key_id=parts.username,
                        aws_secret_access_key=parts.password, region_name="us-east-1", verify=verify)


def test_minio_required_serves_https_to_boto3_and_its_bucket_survives_backup_restore(engine, tmp_path, other_ca_file):
    import botocore.exceptions

    add("files", "minio", MINIO_IMAGE, "production", "--tls")
    found = variables("files")
    assert found["URL"].startswith("https://")
    client = s3_client(found["URL"], found["CA_CERT_FILE"])
    assert found["BUCKET"] in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]  # made over HTTPS
    client.put_object(Bucket=found["BUCKET"], Key="hello.txt", Body=b"hi")
    assert client.get_object(Bucket=found["BUCKET"], Key="hello.txt")["Body"].read() == b"hi"
    with pytest.raises(botocore.exceptions.SSLError):
        s3_client(found["URL"], other_ca_file).list_buckets()
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
        s3_client("http://" + found["URL"].split("://", 1)[1], None).list_buckets()

    archive = tmp_path / "files.tar"
    backup("files", archive)
    restore("files", archive)  # a new container: its certificate is delivered again
    assert s3_client(found["URL"], found["CA_CERT_FILE"]).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


# -- Meilisearch: an https client -----------------------------------------------------------------

def test_meilisearch_required_serves_https_verified_by_the_profile_ca_and_dumps_over_it(engine, tmp_path):
    add("search", "meilisearch-1.10", STANDIN_IMAGE, "production", "--tls")
    found = variables("search")
    assert found["URL"].startswith("https://")
    headers = {"Authorization": f"Bearer {found['API_KEY']}"}
    assert httpx.get(found["URL"] + "/keys", headers=headers, verify=ssl.create_default_context(cafile=found["CA_CERT_FILE"])).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(found["URL"] + "/health", verify=other_ca_context())
    with pytest.raises(httpx.HTTPError):
        httpx.get("http://" + found["URL"].split("://", 1)[1] + "/health")

    archive = tmp_path / "search.meilidump.tar"
    backup("search", archive)  # POST /dumps and GET /tasks/N over HTTPS
    assert b"standin meilisearch dump" in archive.read_bytes()
    restore("search", archive)  # imported at launch, then started again: HTTPS both times
    assert httpx.get(found["URL"] + "/keys", headers=headers, verify=ssl.create_default_context(cafile=found["CA_CERT_FILE"])).status_code == 200


# -- Mailpit: smtplib STARTTLS --------------------------------------------------------------------

MESSAGE = "From: app@example.com\r\nTo: user@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def smtp_address(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname, parts.port


def test_mailpit_required_takes_mail_only_after_a_verified_starttls(engine, tmp_path):
    add("mail", "mailpit", STANDIN_IMAGE, "production", "--tls")
    found = variables("mail")
    assert found["URL"].startswith("smtp+tls://")
    host, port = smtp_address(found["URL"])
    trusted = ssl.create_default_context(cafile=found["CA_CERT_FILE"])
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.starttls(context=trusted)
        assert smtp.sendmail("app@example.com", ["user@example.com"], MESSAGE) == {}
    with smtplib.SMTP(host, port, timeout=10) as smtp, pytest.raises(ssl.SSLCertVerificationError):
        smtp.starttls(context=other_ca_context())
    with smtplib.SMTP(host, port, timeout=10) as smtp, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp.sendmail("app@example.com", ["user@example.com"], MESSAGE)
    assert refused.value.smtp_code == 530

    archive = tmp_path / "mail.tar"
    backup("mail", archive)
    restore("mail", archive)
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.starttls(context=trusted)
        assert smtp.sendmail("app@example.com", ["user@example.com"], MESSAGE) == {}

    result = run_paas("svc", "update", "mail", "--tls", "optional")
    assert result.exit_code == 0, result.output
    with smtplib.SMTP(host, port, timeout=10) as smtp:  # plaintext accepted again, STARTTLS still offered
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert smtp.sendmail("app@example.com", ["user@example.com"], MESSAGE) == {}


# -- a user template says where its certificate and key go ------------------------------------------

USER_TEMPLATE = textwrap.dedent(f"""\
    key: search-tls
    name: Search (TLS)
    description: An HTTP search server whose template says how it speaks TLS.
    category: search
    kind: generic
    image: {STANDIN_IMAGE}
    ports: {{main: 7700}}
    volume: /srv/data
    secrets: {{}}
    environment: {{}}
    command: null
    variables: {{url: "http://{{host}}:{{port}}"}}
    readiness: {{check: http, path: /health}}
    backup: {{strategy: volume}}
    tls:
      cert: /srv/certs/server.crt
      key: /srv/certs/server.key
      ca: /srv/certs/ca.crt
      environment:
        MEILI_SSL_CERT_PATH: /srv/certs/server.crt
        MEILI_SSL_KEY_PATH: /srv/certs/server.key
      scheme: https
      parameters: {{ca: "{{ca_file}}"}}
    """)


def test_a_user_template_puts_the_certificate_where_it_says_and_gets_its_url(engine, tmp_path):
    path = tmp_path / "search-tls.yaml"
    path.write_text(USER_TEMPLATE)
    result = run_paas("catalog", "add", str(path))
    assert result.exit_code == 0, result.output
    add("find", "search-tls", STANDIN_IMAGE, "production", "--tls")
    found = variables("find")
    url = dsn("find")
    assert url.scheme == "https" and url.query == f"ca={found['CA_CERT_FILE']}"
    base = f"https://{url.hostname}:{url.port}"
    assert httpx.get(base + "/health", verify=ssl.create_default_context(cafile=found["CA_CERT_FILE"])).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(base + "/health", verify=other_ca_context())


# -- renewal by the host timer -------------------------------------------------------------------

def served_serial(host: str, port: int, ca_file: str, starttls_smtp: bool = False) -> str:
    context = ssl.create_default_context(cafile=ca_file)
    if starttls_smtp:
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.starttls(context=context)
            return smtp.sock.getpeercert()["serialNumber"]
    import socket

    with socket.create_connection((host, port), timeout=10) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        return tls.getpeercert()["serialNumber"]


def test_renewal_reloads_rabbitmq_in_place_and_restarts_mailpit(engine):
    from urllib.parse import urlsplit

    add("bus", "rabbitmq-4", RABBITMQ_IMAGE, "production", "--tls")
    add("mail", "mailpit", STANDIN_IMAGE, "production", "--tls")
    bus, mail = variables("bus"), variables("mail")
    ca_file = bus["CA_CERT_FILE"]
    bus_at, mail_at = (urlsplit(bus["URL"]).hostname, urlsplit(bus["URL"]).port), smtp_address(mail["URL"])
    containers = {slug: json.loads(run_paas("svc", "show", slug, "--env", "production", "--json").stdout)["container"]
                  for slug in ("bus", "mail")}
    started = {slug: engine.api.inspect_container(name)["State"]["StartedAt"] for slug, name in containers.items()}
    before = {"bus": served_serial(*bus_at, ca_file), "mail": served_serial(*mail_at, ca_file, True)}
    session = amqp_connection(bus["URL"], ssl.create_default_context(cafile=ca_file))  # stays open across the reload

    result = run_paas("backup", "run-due", "--json", "--now", "2099-01-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    renewed = sorted((r["where"], r["reloaded"], r["error"]) for r in json.loads(result.stdout)["tls_renewed"])
    assert renewed == [("default/production/bus", True, None), ("default/production/mail", False, None)]
    assert served_serial(*bus_at, ca_file) != before["bus"]
    assert served_serial(*mail_at, ca_file, True) != before["mail"]
    assert engine.api.inspect_container(containers["bus"])["State"]["StartedAt"] == started["bus"], "no restart"
    assert engine.api.inspect_container(containers["mail"])["State"]["StartedAt"] != started["mail"]
    session.channel().queue_declare("still-open")
    session.close()
