"""TLS of the RabbitMQ, MongoDB, MinIO, Meilisearch and Mailpit kinds and of user templates
(issue 22), without an engine: what each kind asks its server for (arguments, variables),
the URL apps get (read back by the real clients' own parsers: pika, pymongo), the template's
`tls` section (validated like the rest of the schema), and the probes over real TLS sockets
(a server with a certificate from another CA is refused)."""

from __future__ import annotations

import http.server
import socket
import ssl
import textwrap
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import trustme
import yaml

from paas_svc.catalog import kind_capabilities, spec_from_template, template_from_document
from paas_svc.errors import InvalidInput
from paas_svc.kinds import amqp, generic, meilisearch, mongodb, s3, smtp
from paas_svc.kinds.readiness import probe as readiness_probe
from paas_svc.template_schema import validate

CA_PATH = "/home/me/.paas/tls/ca.crt"


# -- what each kind asks its server for -----------------------------------------------------

def test_rabbitmq_required_closes_the_plaintext_listener_and_opens_tls_on_the_main_port():
    arguments, environment = amqp.tls_server("required", {"port": 5672})
    assert arguments == []
    erl = environment["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert "-rabbit tcp_listeners []" in erl and "-rabbit ssl_listeners [5672]" in erl
    for name, path in (("cacertfile", "/paas-tls/ca.crt"), ("certfile", "/paas-tls/server.crt"), ("keyfile", "/paas-tls/server.key")):
        assert f'{{{name},"{path}"}}' in erl
    assert " " not in erl.split("ssl_options ")[1]  # the server script splits the variable on spaces
    assert "-rabbit ssl_listeners [5673]" in amqp.tls_server("required", {"port": 5673})[1]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]


@pytest.mark.parametrize("kind", [amqp, s3, meilisearch])
def test_kinds_whose_port_speaks_one_protocol_refuse_optional(kind):
    assert kind.TLS_MODES == ("required",)
    with pytest.raises(InvalidInput) as refused:
        kind.tls_server("optional")
    assert "--tls required" in refused.value.hint


def test_mongodb_uses_mongod_options_and_one_pem_file_for_certificate_and_key():
    arguments, environment = mongodb.tls_server("required")
    assert environment == {}
    assert arguments[:2] == ["--tlsMode", "requireTLS"] and arguments[0].startswith("-")  # the image runs `mongod ARGS`
    assert arguments[arguments.index("--tlsCertificateKeyFile") + 1] == "/paas-tls/server.pem"
    assert mongodb.TLS_FILES == {"server.pem": ("server.crt", "server.key")}
    assert mongodb.tls_server("optional")[0][1] == "preferTLS"  # TLS and plaintext on the one port
    with pytest.raises(InvalidInput):
        mongodb.tls_server("off")


def test_minio_reads_its_certs_dir_with_its_own_file_names():
    assert s3.tls_server("required") == (["--certs-dir", "/paas-tls"], {})
    assert s3.TLS_FILES == {"public.crt": ("server.crt",), "private.key": ("server.key",)}


def test_meilisearch_gets_its_certificate_options_as_variables():
    assert meilisearch.tls_server("required") == ([], {"MEILI_SSL_CERT_PATH": "/paas-tls/server.crt",
                                                      "MEILI_SSL_KEY_PATH": "/paas-tls/server.key"})


def test_mailpit_offers_starttls_and_requires_it_only_when_required():
    _, optional = smtp.tls_server("optional")
    assert optional == {"MP_SMTP_TLS_CERT": "/paas-tls/server.crt", "MP_SMTP_TLS_KEY": "/paas-tls/server.key"}
    _, required = smtp.tls_server("required")
    assert required == {**optional, "MP_SMTP_REQUIRE_STARTTLS": "true"}


# -- the URL apps get ----------------------------------------------------------------------------

def test_amqps_url_is_read_by_pika_as_tls_with_the_same_credentials_and_vhost():
    import pika

    url = amqp.tls_url("amqp://app:pw@10.0.0.5:5672/%2F", "required", CA_PATH)
    assert url == "amqps://app:pw@10.0.0.5:5672/%2F"
    parameters = pika.URLParameters(url)
    assert parameters.ssl_options is not None and parameters.virtual_host == "/"
    assert (parameters.credentials.username, parameters.credentials.password, parameters.port) == ("app", "pw", 5672)


def test_mongodb_url_carries_tls_and_the_ca_file_as_pymongo_reads_them(tmp_path):
    from pymongo.uri_parser import parse_uri

    ca_file = tmp_path / "ca.crt"  # pymongo opens it while parsing
    ca_file.write_bytes(trustme.CA().cert_pem.bytes())
    url = mongodb.tls_url("mongodb://app:pw@127.0.0.1:27017/?authSource=admin", "required", str(ca_file))
    options = parse_uri(url)["options"]
    assert options["tls"] is True and options["tlsCAFile"] == str(ca_file) and options["authSource"] == "admin"
    again = mongodb.tls_url(url, "required", "/other/ca.crt")  # a renewed path replaces, never duplicates
    assert parse_qs(urlsplit(again).query)["tlsCAFile"] == ["/other/ca.crt"]


def test_http_kinds_become_https_and_smtp_becomes_starttls():
    assert s3.tls_url("http://u:p@127.0.0.1:9000", "required", CA_PATH) == "https://u:p@127.0.0.1:9000"
    assert meilisearch.tls_url("http://127.0.0.1:7700", "required", CA_PATH) == "https://127.0.0.1:7700"
    assert smtp.tls_url("smtp://127.0.0.1:1025", "required", CA_PATH) == "smtp+tls://127.0.0.1:1025"


# -- user templates: the tls section ---------------------------------------------------------------

TEMPLATE = textwrap.dedent("""\
    key: broker-tls
    name: Broker
    description: MQTT broker with TLS.
    category: messaging
    kind: generic
    image: eclipse-mosquitto:2
    ports: {main: 8883}
    volume: /mosquitto/data
    secrets: {password: {generate: 32}}
    environment: {MQTT_PASSWORD: "{password}"}
    command: [mosquitto, -c, /mosquitto/config/mosquitto.conf]
    variables: {url: "mqtt://app:{password}@{host}:{port}"}
    readiness: {check: tcp}
    backup: {strategy: volume}
    tls:
      cert: /mosquitto/certs/server.crt
      key: /mosquitto/certs/server.key
      ca: /mosquitto/certs/ca.crt
      owner: "1883:1883"
      arguments: [-v]
      environment: {MQTT_TLS: "on"}
      modes: [required, optional]
      scheme: mqtts
      parameters: {cafile: "{ca_file}", verify: "true"}
    """)


def document(**changes) -> dict:
    data = yaml.safe_load(TEMPLATE)
    for name, value in changes.items():
        if value is None:
            data["tls"].pop(name, None)
        else:
            data["tls"][name] = value
    return data


def problems(data: dict) -> list[str]:
    return validate(data, kind_capabilities())


def test_a_template_tls_section_validates_and_drives_the_generic_kind():
    assert problems(document()) == []
    spec = spec_from_template(template_from_document(document(), "t.yaml", "user"))
    assert generic.tls_server("required", spec) == (["-v"], {"MQTT_TLS": "on"})
    assert generic.tls_server("optional", spec) == (["-v"], {"MQTT_TLS": "on"})
    url = generic.tls_url("mqtt://app:pw@127.0.0.1:8883", "required", CA_PATH, spec)
    parts = urlsplit(url)
    assert parts.scheme == "mqtts" and parts.netloc == "app:pw@127.0.0.1:8883"
    assert parse_qs(parts.query) == {"cafile": [CA_PATH], "verify": ["true"]}
    assert generic.tls_layout(spec) == ("/mosquitto/certs", {"server.crt": ("server.crt",), "server.key": ("server.key",),
                                                             "ca.crt": ("ca.crt",)}, "1883:1883")


def test_a_template_without_tls_cannot_turn_it_on_and_one_mode_refuses_the_other():
    data = document()
    del data["tls"]
    spec = spec_from_template(template_from_document(data, "t.yaml", "user"))
    with pytest.raises(InvalidInput) as refused:
        generic.tls_server("required", spec)
    assert "tls section" in refused.value.message
    assert generic.tls_url("mqtt://h:1", "required", CA_PATH, spec) == "mqtt://h:1"
    only_required = spec_from_template(template_from_document(document(modes=None), "t.yaml", "user"))
    assert generic.tls_server("required", only_required)[1] == {"MQTT_TLS": "on"}
    with pytest.raises(InvalidInput):
        generic.tls_server("optional", only_required)


@pytest.mark.parametrize("changes, expected", [
    ({"key": None}, "tls.key: is required"),
    ({"cert": "server.crt"}, "tls.cert: must be an absolute path"),
    ({"ca": "/etc/ca.crt"}, "tls: cert, key and ca must be in one directory"),
    ({"cert": "/mosquitto/data/server.crt", "key": "/mosquitto/data/server.key", "ca": None}, "may not be or hold the volume"),
    ({"cert": "/server.crt"}, "must be a file in a directory below /"),
    ({"key": "/mosquitto/certs/server.crt"}, "is also tls.cert"),
    ({"owner": "mosquitto"}, "tls.owner: must be numeric uid:gid"),
    ({"modes": ["always"]}, "tls.modes: must be a non-empty list of required, optional"),
    ({"modes": []}, "tls.modes"),
    ({"scheme": "MQTT S"}, "tls.scheme: must be a URL scheme"),
    ({"parameters": {"cafile": "{password}"}}, "placeholder {password} resolves to nothing (known: ca_file)"),
    ({"arguments": "-v"}, "tls.arguments: must be a list of strings"),
    ({"environment": {"lower": "x"}}, "tls.environment.lower: environment variable names"),
    ({"certificate": "/x/y"}, "tls.certificate: unknown field"),
])
def test_a_bad_tls_section_is_reported_with_its_field_path(changes, expected):
    found = problems(document(**changes))
    assert any(expected in problem for problem in found), found


def test_a_tls_section_is_only_for_the_generic_kind():
    data = document()
    data.update(kind="amqp", readiness={"check": "tcp"})
    assert any("the amqp kind sets up TLS itself" in problem for problem in problems(data))


# -- probes over real TLS sockets -------------------------------------------------------------------

@pytest.fixture
def ca():
    return trustme.CA()


def client_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def https_server(ca):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_check_speaks_https_with_the_ca_and_refuses_another_ca(ca, https_server):
    assert generic.check_http("127.0.0.1", https_server, "/health", ssl_context=client_context(ca)) == "GET /health answered 200"
    with pytest.raises(ssl.SSLCertVerificationError):
        generic.check_http("127.0.0.1", https_server, "/health", ssl_context=client_context(trustme.CA()))
    ready, detail = readiness_probe({"check": "http", "path": "/health"}, "127.0.0.1", https_server, {})
    assert not ready  # plaintext to an HTTPS-only port is not "ready"


@pytest.fixture
def tls_listener(ca):
    """A TLS server that completes the handshake then closes: enough to see who verifies what."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize("kind", [amqp, mongodb])
def test_protocol_probes_verify_the_server_certificate(kind, tls_listener):
    with pytest.raises(ssl.SSLCertVerificationError):
        kind.probe("127.0.0.1", tls_listener, {"user": "app", "password": "pw"}, ssl_context=client_context(trustme.CA()))


@pytest.mark.parametrize("kind", [amqp, mongodb])
def test_protocol_probes_get_past_the_handshake_with_the_right_ca(kind, ca, tls_listener):
    # The listener hangs up after the handshake: the probe fails in the protocol, not in TLS.
    with pytest.raises((EOFError, OSError)) as failed:
        kind.probe("127.0.0.1", tls_listener, {"user": "app", "password": "pw"}, ssl_context=client_context(ca))
    assert not isinstance(failed.value, ssl.SSLCertVerificationError)


# -- the core's side: modes, the files in the container, the variables ----------------------------

def builtin_spec(key: str) -> dict:
    from paas_svc.catalog import load_builtin

    return spec_from_template(load_builtin()[key])


def test_supported_modes_follow_each_kind_and_a_generic_template():
    from paas_svc.usecases.tls import check_kind_supports, supported_modes

    assert supported_modes("amqp") == ("required",) and supported_modes("s3") == ("required",)
    assert supported_modes("meilisearch") == ("required",)
    assert supported_modes("mongodb") == ("required", "optional") and supported_modes("smtp") == ("required", "optional")
    with_section = spec_from_template(template_from_document(document(), "t.yaml", "user"))
    assert supported_modes("generic", with_section) == ("required", "optional")
    data = document()
    del data["tls"]
    without = spec_from_template(template_from_document(data, "t.yaml", "user"))
    assert supported_modes("generic", without) == ()
    with pytest.raises(InvalidInput) as refused:
        check_kind_supports("generic", "broker-tls", without, "required")
    assert "no tls section" in refused.value.message
    with pytest.raises(InvalidInput) as refused:
        check_kind_supports("amqp", "rabbitmq-4", builtin_spec("rabbitmq-4"), "optional")
    assert refused.value.hint == "Use --tls required, or --tls off."
    check_kind_supports("amqp", "rabbitmq-4", builtin_spec("rabbitmq-4"), "required")


STANDARD = {"ca.crt": b"CA\n", "server.crt": b"CERT\n", "server.key": b"KEY\n"}


def test_the_files_in_the_container_are_named_and_joined_as_each_server_reads_them():
    from paas_svc.usecases.tls import layout

    directory, owner, files = layout(mongodb, builtin_spec("mongodb-7"), STANDARD)
    assert (directory, owner) == ("/paas-tls", "mongodb")
    assert ("server.pem", b"CERT\nKEY\n", 0o600) in files and ("server.key", b"KEY\n", 0o600) in files
    assert ("ca.crt", b"CA\n", 0o644) in files
    _, _, files = layout(s3, builtin_spec("minio"), STANDARD)
    assert ("public.crt", b"CERT\n", 0o644) in files and ("private.key", b"KEY\n", 0o600) in files
    spec = spec_from_template(template_from_document(document(), "t.yaml", "user"))
    directory, owner, files = layout(generic, spec, STANDARD)
    assert (directory, owner) == ("/mosquitto/certs", "1883:1883")
    assert sorted(files) == [("ca.crt", b"CA\n", 0o644), ("server.crt", b"CERT\n", 0o644), ("server.key", b"KEY\n", 0o600)]


def test_mongo_tools_in_the_container_connect_with_tls_when_the_service_speaks_it():
    from types import SimpleNamespace

    spec = builtin_spec("mongodb-7")
    plain = SimpleNamespace(service=SimpleNamespace(spec=spec))
    assert mongodb.tool_tls_arguments(plain) == []
    for mode in ("required", "optional"):
        ctx = SimpleNamespace(service=SimpleNamespace(spec={**spec, "tls": mode}))
        assert mongodb.tool_tls_arguments(ctx) == ["--ssl", "--sslCAFile=/paas-tls/ca.crt"]


def test_variables_of_tls_services_of_these_kinds():
    from paas_svc.kinds.variables import TlsView, service_variables

    view = TlsView(CA_PATH, "PEM")
    credentials = {"user": "AKIA", "password": "secret"}
    found = service_variables("files", "minio", {**builtin_spec("minio"), "tls": "required"}, credentials, "127.0.0.1", 9000, view)
    assert found["FILES_URL"] == "https://AKIA:secret@127.0.0.1:9000" and found["FILES_ENDPOINT"] == "https://127.0.0.1:9000"
    assert found["FILES_CA_CERT_FILE"] == CA_PATH
    spec = {**spec_from_template(template_from_document(document(), "t.yaml", "user")), "tls": "required"}
    url = service_variables("mq", "broker-tls", spec, {"password": "pw"}, "127.0.0.1", 8883, view)["MQ_URL"]
    assert url == f"mqtts://app:pw@127.0.0.1:8883?cafile={CA_PATH}&verify=true"
    plain = service_variables("mq", "broker-tls", {**spec, "tls": None}, {"password": "pw"}, "127.0.0.1", 8883, view)["MQ_URL"]
    assert plain == "mqtt://app:pw@127.0.0.1:8883"


def test_a_readiness_check_on_another_port_than_the_main_one_stays_plaintext(tmp_path):
    from types import SimpleNamespace

    from paas_svc.state.models import ServiceRecord
    from paas_svc.usecases.tls import readiness_context

    spec = {**builtin_spec("mailpit"), "tls": "required"}  # readiness: http on 8025, TLS on 1025
    service = ServiceRecord(id="abc123def456", project="p", env="e", slug="mail", template="mailpit", image="i",
                            spec=spec, secret=None, host_ports={1025: 40001, 8025: 40002})
    nobody = SimpleNamespace()  # nothing is read from the manager for a plaintext check
    assert readiness_context(nobody, service) is None
