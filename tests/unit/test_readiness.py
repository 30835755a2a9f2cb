"""The protocol probes against small in-test servers (pure sockets, no engine)."""

import base64
import importlib.util
import socket
import struct
import threading

import pytest

from paas_svc.kinds import readiness
from paas_svc.kinds.protocols import mongo as bson
from paas_svc.kinds.protocols.scram import ScramClient as _Scram
from tests.support.paths import TESTS


def test_scram_matches_rfc7677_example():
    # RFC 7677 section 3: user "user", password "pencil", fixed client nonce.
    scram = _Scram("pencil", "user", nonce="rOprNGfwEbeRWgbNEkqO")
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

STANDIN_PATH = TESTS / "images" / "standin" / "standin.py"


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


# -- PostgreSQL: SCRAM-SHA-256 only, and the server must prove it knows the password -------------

import hashlib  # noqa: E402
import hmac  # noqa: E402

PG = {"probe": "postgres"}
PG_CREDENTIALS = {"user": "app", "password": "PgSecretPgSecretPgSecret12345678", "db": "db"}


def _pg_auth(code: int, extra: bytes = b"") -> bytes:
    payload = struct.pack("!I", code) + extra
    return b"R" + struct.pack("!I", len(payload) + 4) + payload


def _pg_ready() -> bytes:
    return b"Z" + struct.pack("!I", 5) + b"I"


class FakePostgres:
    """A socket thread on 127.0.0.1 playing a PostgreSQL server (or a squatter on its port):
    it answers the startup message as `script` says and keeps every byte the client sends."""

    def __init__(self, script):
        self.received = bytearray()
        self._script = script
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(1)
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def recv_message(self, connection) -> bytes:
        header = self._exact(connection, 5)
        return header + self._exact(connection, struct.unpack("!I", header[1:])[0] - 4)

    def _exact(self, connection, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = connection.recv(count - len(data))
            if not chunk:
                raise EOFError
            data += chunk
            self.received += chunk
        return data

    def _serve(self):
        connection, _ = self._server.accept()
        connection.settimeout(5)
        try:
            length = struct.unpack("!I", self._exact(connection, 4))[0]
            self._exact(connection, length - 4)  # the startup message
            self._script(self, connection)
            while chunk := connection.recv(4096):  # whatever else the client says, until it closes
                self.received += chunk
        except (EOFError, OSError):
            pass
        finally:
            connection.close()
            self._server.close()

    def finished(self) -> bytes:
        self._thread.join(timeout=10)
        return bytes(self.received)


def _scram_server(signature: str = "right", finish: bool = True):
    password = PG_CREDENTIALS["password"].encode()

    def script(server: FakePostgres, connection):
        connection.sendall(_pg_auth(10, b"SCRAM-SHA-256\0\0"))
        initial = server.recv_message(connection)
        client_first = initial[5:].split(b"\0", 1)[1][4:].decode()
        client_first_bare = client_first[3:]
        nonce = client_first_bare.split("r=", 1)[1] + "ServerNonce"
        salt = b"0123456789abcdef"
        server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i=4096"
        connection.sendall(_pg_auth(11, server_first.encode()))
        client_final = server.recv_message(connection)[5:].decode()
        without_proof = client_final.rsplit(",p=", 1)[0]
        salted = hashlib.pbkdf2_hmac("sha256", password, salt, 4096)
        auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
        server_signature = hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), auth_message, "sha256")
        if signature == "wrong":
            server_signature = bytes(32)
        connection.sendall(_pg_auth(12, b"v=" + base64.b64encode(server_signature)))
        if finish:
            connection.sendall(_pg_auth(0) + _pg_ready())

    return script


@pytest.mark.parametrize("code, extra, reason", [
    (3, b"", "asked for a cleartext password"),
    (5, b"salt", "asked for an md5 password hash"),
])
def test_postgres_probe_never_sends_the_password_to_a_cleartext_or_md5_request(code, extra, reason):
    server = FakePostgres(lambda srv, connection: connection.sendall(_pg_auth(code, extra)))
    ready, detail = readiness.probe(PG, "127.0.0.1", server.port, PG_CREDENTIALS)
    received = server.finished()
    assert not ready and reason in detail and "did not send the password" in detail
    password = PG_CREDENTIALS["password"].encode()
    assert password not in received
    md5_inner = hashlib.md5(password + b"app").hexdigest().encode()
    assert b"md5" not in received and md5_inner not in received
    assert len(received) == struct.unpack("!I", received[:4])[0], "nothing after the startup message: no PasswordMessage at all"


def test_postgres_probe_refuses_a_login_without_scram():
    server = FakePostgres(lambda srv, connection: connection.sendall(_pg_auth(0) + _pg_ready()))
    ready, detail = readiness.probe(PG, "127.0.0.1", server.port, PG_CREDENTIALS)
    server.finished()
    assert not ready and "without proving it knows the password" in detail


def test_postgres_probe_needs_scram_sha_256_among_the_mechanisms():
    server = FakePostgres(lambda srv, connection: connection.sendall(_pg_auth(10, b"SCRAM-SHA-1\0\x1b[31m\0\0")))
    ready, detail = readiness.probe(PG, "127.0.0.1", server.port, PG_CREDENTIALS)
    assert PG_CREDENTIALS["password"].encode() not in server.finished()
    assert not ready and "offers no SCRAM-SHA-256" in detail and "\x1b" not in detail


def test_postgres_probe_logs_in_with_scram_and_a_right_server_signature():
    server = FakePostgres(_scram_server("right"))
    assert readiness.probe(PG, "127.0.0.1", server.port, PG_CREDENTIALS) == (True, "logged in over TCP (SCRAM-SHA-256, server verified)")
    assert PG_CREDENTIALS["password"].encode() not in server.finished()


def test_postgres_probe_refuses_a_wrong_server_signature():
    server = FakePostgres(_scram_server("wrong"))
    assert readiness.probe(PG, "127.0.0.1", server.port, PG_CREDENTIALS) == (False, "server signature did not verify")
    assert PG_CREDENTIALS["password"].encode() not in server.finished()
