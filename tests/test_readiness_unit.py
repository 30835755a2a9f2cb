"""The protocol probes against small in-test servers (pure sockets, no engine)."""

import base64
import socket
import threading

from paas_svc import readiness
from paas_svc.readiness import _Scram


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
