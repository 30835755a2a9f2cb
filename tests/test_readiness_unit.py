"""The protocol probes against small in-test servers (pure sockets, no engine)."""

import base64
import importlib.util
import socket
import struct
import threading
from pathlib import Path

import pytest

from paas_svc import readiness
from paas_svc.protocols import mongo as bson
from paas_svc.protocols.scram import ScramClient as _Scram


def test_scram_matches_rfc7677_example():
    # RFC 7677 section 3: user "user", password "pencil", fixed client nonce.
    scram = _Scram("pencil")
    scram._nonce = "rOprNGfwEbeRWgbNEkqO"
    scram._first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = scram.client_final(server_first)
    assert final == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    assert scram.verify_server("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    assert not scram.verify_server("v=" + base64.b64encode(b"x" * 32).decode())


def _serve_once(reply: bytes):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def handle():
        connection, _ = server.accept()
        connection.recv(4096)
        connection.sendall(reply)
        connection.close()
        server.close()

    threading.Thread(target=handle, daemon=True).start()
    return server.getsockname()[1]


def test_redis_probe_needs_auth_ok_and_pong():
    port = _serve_once(b"+OK\r\n+PONG\r\n")
    assert readiness.probe({"probe": "redis"}, "127.0.0.1", port, {"password": "pw"}) == (True, "authenticated PING answered PONG")


def test_redis_probe_rejects_wrong_password():
    port = _serve_once(b"-WRONGPASS invalid username-password pair\r\n")
    ready, detail = readiness.probe({"probe": "redis"}, "127.0.0.1", port, {"password": "pw"})
    assert not ready and "WRONGPASS" in detail


def test_redis_probe_loading_is_not_ready():
    port = _serve_once(b"+OK\r\n-LOADING Redis is loading the dataset in memory\r\n")
    assert readiness.probe({"probe": "redis"}, "127.0.0.1", port, {"password": "pw"})[0] is False


def test_refused_connection_is_not_ready():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ready, detail = readiness.probe({"probe": "redis"}, "127.0.0.1", port, {"password": "pw"})
    assert not ready and "refused" in detail


def test_http_probe_status():
    port = _serve_once(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
    assert readiness.probe({"probe": "http", "path": "/readyz"}, "127.0.0.1", port, {}) == (False, "GET /readyz answered 503")
    port = _serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert readiness.probe({"probe": "http", "path": "/readyz"}, "127.0.0.1", port, {})[0] is True


def test_postgres_probe_reports_server_error():
    # ErrorResponse: severity FATAL, message "the database system is starting up"
    fields = b"SFATAL\0C57P03\0Mthe database system is starting up\0\0"
    port = _serve_once(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)
    ready, detail = readiness.probe({"probe": "postgres"}, "127.0.0.1", port, {"user": "app", "password": "x", "db": "db"})
    assert not ready and detail == "the database system is starting up"


# -- MongoDB: BSON, OP_MSG and a SCRAM-SHA-256 login against the stand-in's server side --

STANDIN_PATH = Path(__file__).parent / "images" / "standin" / "standin.py"


def _load_standin():
    spec = importlib.util.spec_from_file_location("paas_test_standin", STANDIN_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


standin = _load_standin()
MONGO = {"probe": "mongodb"}
ROOT = {"user": "app", "password": "Pw4mongoRootUser0123456789abcdef"}


def test_bson_round_trip_of_every_supported_type():
    document = {"double": 1.5, "string": "héllo", "empty": "", "document": {"inner": {"deep": True}},
                "binary": b"\x00\xffpayload", "true": True, "false": False, "int32": -(2**31), "int64": 2**40,
                "negative64": -(2**40), "$db": "admin"}
    encoded = bson.encode(document)
    assert bson.decode(encoded) == document
    assert standin.bson_decode(encoded) == document  # the stand-in's independent codec agrees
    assert standin.bson_encode(document) == encoded


def test_bson_wire_bytes():
    assert bson.encode({"ok": 1.0}) == standin.bson_ok()
    assert bson.encode({"n": 1}) == b"\x0c\x00\x00\x00\x10n\x00\x01\x00\x00\x00\x00"
    assert bson.encode({"b": b"ab"}) == b"\x0f\x00\x00\x00\x05b\x00\x02\x00\x00\x00\x00ab\x00"
    assert bson.encode({"big": 2**31}) == b"\x12\x00\x00\x00\x12big\x00" + struct.pack("<q", 2**31) + b"\x00"


def _raw_document(elements: bytes) -> bytes:
    return struct.pack("<i", len(elements) + 5) + elements + b"\x00"


def test_bson_decode_skips_fixed_size_types_and_rejects_the_rest():
    # An ObjectId and a Timestamp (as in $clusterTime/operationTime) are skipped; null and arrays are kept.
    elements = (b"\x07_id\x00" + b"\x01" * 12 + b"\x11operationTime\x00" + b"\x02" * 8 + b"\x0anothing\x00"
                + b"\x04list\x00" + _raw_document(b"\x100\x00\x01\x00\x00\x00") + b"\x01ok\x00" + struct.pack("<d", 1.0))
    assert bson.decode(_raw_document(elements)) == {"nothing": None, "list": [1], "ok": 1.0}
    with pytest.raises(ValueError, match="unsupported BSON type 0x0b"):
        bson.decode(_raw_document(b"\x0bre\x00a\x00\x00"))  # a regex
    whole = bson.encode({"s": "text", "n": 5})
    for broken in (whole[:-1], whole[:9] + b"\x7f" + whole[10:], b"\x03\x00", whole[:4] + b"\x02s\x00\xff\xff\xff\x7f" + whole[12:]):
        with pytest.raises((ValueError, struct.error)):
            bson.decode(broken)


def test_scram_puts_the_escaped_user_name_in_client_first():
    assert _Scram("pw").client_first().startswith("n,,n=,r=")  # PostgreSQL: the name comes from the startup message
    first = _Scram("pw", "a=b,c").client_first()
    assert first.startswith("n,,n=a=3Db=2Cc,r=") and len(first.split(",")) == 4


@pytest.fixture
def mongo_server():
    """The stand-in's MongoDB handler on a loopback port; `root` None = no login configured."""
    servers = []

    def start(root=None, session_class=None):
        handler = standin.MongoHandler
        if session_class is not None:
            handler = type("Handler", (standin.MongoHandler,), {"session_class": session_class})
        server = standin.TCPServer(("127.0.0.1", 0), handler)
        server.mongo_root = root
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_mongo_probe_logs_in_and_pings(mongo_server):
    port = mongo_server(standin.MongoRootUser(ROOT["user"], ROOT["password"]))
    assert readiness.probe(MONGO, "127.0.0.1", port, ROOT) == (True, "authenticated ping answered ok")


def test_mongo_probe_wrong_password_is_not_ready_with_the_server_message(mongo_server):
    port = mongo_server(standin.MongoRootUser(ROOT["user"], ROOT["password"]))
    assert readiness.probe(MONGO, "127.0.0.1", port, {**ROOT, "password": "wrong"}) == (False, "Authentication failed.")
    assert readiness.probe(MONGO, "127.0.0.1", port, {**ROOT, "user": "other"}) == (False, "Authentication failed.")


def test_mongo_probe_needs_a_real_login_not_just_ok(mongo_server):
    # A server that answers {ok: 1} to everything (no authentication at all) is not ready.
    port = mongo_server(None)
    ready, detail = readiness.probe(MONGO, "127.0.0.1", port, ROOT)
    assert not ready and detail == "saslStart answered without a SCRAM conversation"


def test_mongo_probe_rejects_a_forged_server_signature(mongo_server):
    root = standin.MongoRootUser(ROOT["user"], ROOT["password"])
    root.server_key = b"\x00" * 32  # accepts the client's proof, but cannot prove it knows the password
    port = mongo_server(root)
    assert readiness.probe(MONGO, "127.0.0.1", port, ROOT) == (False, "server signature did not verify")


def test_mongo_probe_finishes_an_exchange_without_skip_empty_exchange(mongo_server):
    class OldSession(standin.MongoSession):
        def sasl_start(self, command):
            return super().sasl_start({key: value for key, value in command.items() if key != "options"})

    port = mongo_server(standin.MongoRootUser(ROOT["user"], ROOT["password"]), OldSession)
    assert readiness.probe(MONGO, "127.0.0.1", port, ROOT) == (True, "authenticated ping answered ok")


def test_mongo_stand_in_refuses_ping_before_login(mongo_server):
    port = mongo_server(standin.MongoRootUser(ROOT["user"], ROOT["password"]))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        bson.op_msg_send(sock, 7, {"hello": 1, "$db": "admin"})
        assert bson.op_msg_receive(sock, 7) == {"ok": 1.0, "isWritablePrimary": True, "maxWireVersion": 21}
        bson.op_msg_send(sock, 8, {"ping": 1, "$db": "admin"})
        reply = bson.op_msg_receive(sock, 8)
    assert reply["ok"] == 0.0 and reply["code"] == 13 and "requires authentication" in reply["errmsg"]


def test_mongo_probe_garbage_reply_is_not_ready():
    port = _serve_once(struct.pack("<iiii", 26, 1, 1, 2013) + b"\x00\x00\x00\x00\x00" + b"\x05\x00\x00\x00\x01")
    ready, detail = readiness.probe(MONGO, "127.0.0.1", port, ROOT)
    assert not ready and detail == "malformed BSON document"
