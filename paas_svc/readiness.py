"""Protocol-level readiness probes, made from the host through the published port.

Each probe answers (ready, detail). They never raise for "not ready yet": a refused
connection, a server still starting, or a wrong answer are all just "not ready".
Going through the published port means the probe reaches the real server, never the
temporary one PostgreSQL and MongoDB run on a socket/localhost during first-run init.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import socket
import struct
from typing import Callable, Mapping

from paas_svc.dsn import fill

PROBE_TIMEOUT_SECONDS = 2.0

ProbeResult = tuple[bool, str]


def probe(readiness: Mapping, host: str, port: int, credentials: Mapping[str, str]) -> ProbeResult:
    kind = readiness.get("probe", "tcp")
    function = _PROBES.get(kind)
    if function is None:
        return False, f"unknown readiness probe {kind!r}"
    try:
        return function(readiness, host, port, credentials)
    except (OSError, EOFError, ValueError, struct.error, http.client.HTTPException) as error:
        return False, _describe(error)


def _describe(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def _connect(host: str, port: int) -> socket.socket:
    return socket.create_connection((host, port), timeout=PROBE_TIMEOUT_SECONDS)


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise EOFError("connection closed by the server")
        chunks.extend(chunk)
    return bytes(chunks)


# -- TCP ----------------------------------------------------------------------------

def _probe_tcp(readiness, host, port, credentials) -> ProbeResult:
    with _connect(host, port):
        return True, "accepts connections"


# -- Redis: AUTH then PING ----------------------------------------------------------

def _resp_command(*parts: str) -> bytes:
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


def _resp_line(reader) -> bytes:
    line = reader.readline()
    if not line:
        raise EOFError("connection closed by the server")
    return line.rstrip(b"\r\n")


def _probe_redis(readiness, host, port, credentials) -> ProbeResult:
    with _connect(host, port) as sock:
        password = credentials.get("password")
        request = (_resp_command("AUTH", password) if password else b"") + _resp_command("PING")
        sock.sendall(request)
        reader = sock.makefile("rb")
        if password:
            answer = _resp_line(reader)
            if answer != b"+OK":
                return False, "AUTH answered " + answer.decode(errors="replace")[:80]
        answer = _resp_line(reader)
        if answer == b"+PONG":
            return True, "authenticated PING answered PONG"
        return False, "PING answered " + answer.decode(errors="replace")[:80]


# -- PostgreSQL: a real login (SCRAM-SHA-256, md5 or cleartext) ----------------------

def _pg_message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _pg_read(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _recv_exact(sock, 5)
    kind, length = header[:1], struct.unpack("!I", header[1:])[0]
    return kind, _recv_exact(sock, length - 4)


def _pg_error_text(payload: bytes) -> str:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode(errors="replace")
    return fields.get(b"M", "error")


def _probe_postgres(readiness, host, port, credentials) -> ProbeResult:
    user, password, database = credentials.get("user", "postgres"), credentials.get("password", ""), credentials.get("db", "postgres")
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    startup = struct.pack("!II", len(params) + 8, 196608) + params
    with _connect(host, port) as sock:
        sock.sendall(startup)
        scram: _Scram | None = None
        while True:
            kind, payload = _pg_read(sock)
            if kind == b"E":
                return False, _pg_error_text(payload)
            if kind == b"Z":
                sock.sendall(_pg_message(b"X", b""))
                return True, "logged in over TCP"
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, notices
            code = struct.unpack("!I", payload[:4])[0]
            if code == 0:
                continue
            if code == 3:
                sock.sendall(_pg_message(b"p", password.encode() + b"\0"))
            elif code == 5:
                salt = payload[4:8]
                inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                sock.sendall(_pg_message(b"p", b"md5" + hashlib.md5(inner + salt).hexdigest().encode() + b"\0"))
            elif code == 10:
                scram = _Scram(password)
                first = scram.client_first().encode()
                sock.sendall(_pg_message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
            elif code == 11 and scram is not None:
                sock.sendall(_pg_message(b"p", scram.client_final(payload[4:].decode()).encode()))
            elif code == 12 and scram is not None:
                if not scram.verify_server(payload[4:].decode()):
                    return False, "server signature did not verify"
            else:
                return False, f"unsupported authentication request {code}"


class _Scram:
    """SCRAM-SHA-256 client (RFC 7677); passwords are letters and digits, so SASLprep is the identity."""

    def __init__(self, password: str):
        self._password = password.encode()
        self._nonce = base64.b64encode(os.urandom(18)).decode()
        self._first_bare = f"n=,r={self._nonce}"
        self._server_signature = b""

    def client_first(self) -> str:
        return "n,," + self._first_bare

    def client_final(self, server_first: str) -> str:
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        nonce, salt, iterations = fields["r"], base64.b64decode(fields["s"]), int(fields["i"])
        if not nonce.startswith(self._nonce):
            raise ValueError("server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self._password, salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self._server_signature = hmac.digest(server_key, auth_message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}"

    def verify_server(self, server_final: str) -> bool:
        fields = dict(item.split("=", 1) for item in server_final.split(","))
        return hmac.compare_digest(base64.b64decode(fields.get("v", "")), self._server_signature)


# -- MongoDB: OP_MSG hello ----------------------------------------------------------

def _bson_hello() -> bytes:
    elements = b"\x10hello\x00" + struct.pack("<i", 1) + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
    return struct.pack("<i", len(elements) + 5) + elements + b"\x00"


def _probe_mongodb(readiness, host, port, credentials) -> ProbeResult:
    body = struct.pack("<I", 0) + b"\x00" + _bson_hello()
    message = struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body
    with _connect(host, port) as sock:
        sock.sendall(message)
        length, _, response_to, opcode = struct.unpack("<iiii", _recv_exact(sock, 16))
        reply = _recv_exact(sock, length - 16)
        if opcode != 2013 or response_to != 1:
            return False, f"unexpected reply opcode {opcode}"
        document = reply[5:]
        # {"ok": 1.0} is encoded as type 0x01, name "ok", little-endian double.
        marker = document.find(b"\x01ok\x00")
        if marker >= 0 and struct.unpack("<d", document[marker + 4: marker + 12])[0] == 1.0:
            return True, "hello answered ok"
        return False, "hello did not answer ok"


# -- HTTP ---------------------------------------------------------------------------

def _probe_http(readiness, host, port, credentials) -> ProbeResult:
    path = readiness.get("path", "/")
    headers = {}
    if readiness.get("bearer"):
        headers["Authorization"] = "Bearer " + fill(readiness["bearer"], credentials)
    connection = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status == 200:
        return True, f"GET {path} answered 200"
    return False, f"GET {path} answered {response.status}"


_PROBES: dict[str, Callable[..., ProbeResult]] = {
    "tcp": _probe_tcp,
    "redis": _probe_redis,
    "postgres": _probe_postgres,
    "mongodb": _probe_mongodb,
    "http": _probe_http,
}
