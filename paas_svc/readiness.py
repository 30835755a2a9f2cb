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


# -- PostgreSQL: a real login, SCRAM-SHA-256 only ----------------------------------
#
# Whatever listens on the published port gets no usable secret: a cleartext or md5 request
# (which would hand it the password, or a hash that replays as well as the password) is
# refused before anything is sent, and a login counts only once the server has proved, with
# its SCRAM signature, that it knows the password itself.

_PG_AUTH_NAMES = {3: "a cleartext password", 5: "an md5 password hash", 7: "GSSAPI", 9: "SSPI"}


def _pg_message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _pg_read(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _recv_exact(sock, 5)
    kind, length = header[:1], struct.unpack("!I", header[1:])[0]
    if length < 4 or length > 1024 * 1024:
        raise ValueError(f"implausible message length {length}")
    return kind, _recv_exact(sock, length - 4)


def _pg_error_text(payload: bytes) -> str:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode(errors="replace")
    return _printable(fields.get(b"M", "error"))


def _printable(text: str, limit: int = 200) -> str:
    """Text from the server, safe to show: control characters replaced, bounded."""
    return "".join(char if char.isprintable() else "?" for char in text[:limit])


def _probe_postgres(readiness, host, port, credentials) -> ProbeResult:
    user, password, database = credentials.get("user", "postgres"), credentials.get("password", ""), credentials.get("db", "postgres")
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    startup = struct.pack("!II", len(params) + 8, 196608) + params
    with _connect(host, port) as sock:
        sock.sendall(startup)
        scram: _Scram | None = None
        verified = False
        while True:
            kind, payload = _pg_read(sock)
            if kind == b"E":
                return False, _pg_error_text(payload)
            if kind == b"Z":
                sock.sendall(_pg_message(b"X", b""))
                return True, "logged in over TCP (SCRAM-SHA-256, server verified)"
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, notices
            code = struct.unpack("!I", payload[:4])[0]
            if code == 0:
                if not verified:
                    return False, "the server let the login in without proving it knows the password (no SCRAM exchange)"
                continue
            if code == 10:
                mechanisms = [name for name in payload[4:].split(b"\0") if name]
                if b"SCRAM-SHA-256" not in mechanisms:
                    offered = ", ".join(_printable(name.decode(errors="replace"), 40) for name in mechanisms[:5]) or "none"
                    return False, f"the server offers no SCRAM-SHA-256 login (offers: {offered}); the password was not sent"
                scram = _Scram(password)
                first = scram.client_first().encode()
                sock.sendall(_pg_message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
            elif code == 11 and scram is not None:
                sock.sendall(_pg_message(b"p", scram.client_final(payload[4:].decode()).encode()))
            elif code == 12 and scram is not None:
                if not scram.verify_server(payload[4:].decode()):
                    return False, "server signature did not verify"
                verified = True
            elif code in _PG_AUTH_NAMES:
                return False, (f"the server asked for {_PG_AUTH_NAMES[code]}; paas logs in only with SCRAM-SHA-256 "
                               "and did not send the password")
            else:
                return False, f"unsupported authentication request {code}"


class _Scram:
    """SCRAM-SHA-256 client (RFC 7677); passwords are letters and digits, so SASLprep is the identity."""

    def __init__(self, password: str, username: str = ""):
        # PostgreSQL ignores the SCRAM user name (it takes the startup message's), so it
        # sends "n="; MongoDB needs it, with "=" and "," escaped as RFC 5802 says.
        self._password = password.encode()
        self._nonce = base64.b64encode(os.urandom(18)).decode()
        name = username.replace("=", "=3D").replace(",", "=2C")
        self._first_bare = f"n={name},r={self._nonce}"
        self._server_signature = b""

    def client_first(self) -> str:
        return "n,," + self._first_bare

    def client_final(self, server_first: str) -> str:
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        if not {"r", "s", "i"} <= fields.keys():
            raise ValueError("malformed SCRAM server-first message")
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


# -- MongoDB: SCRAM-SHA-256 login as the root user, then ping ---------------------
#
# A minimal BSON codec: just the types these few commands and their replies use.
# Decoding skips the fixed-size types a reply may carry besides (ObjectId, dates,
# timestamps, null, decimal128, min/max key); any other type makes the reply unreadable,
# which the probe reports as "not ready".

_BSON_FIXED_SIZES = {0x07: 12, 0x09: 8, 0x0A: 0, 0x11: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}


def _bson_cstring(name: str) -> bytes:
    encoded = name.encode()
    if b"\0" in encoded:
        raise ValueError("BSON names cannot contain NUL")
    return encoded + b"\0"


def _bson_encode(document: Mapping) -> bytes:
    elements = bytearray()
    for name, value in document.items():
        key = _bson_cstring(name)
        if isinstance(value, bool):
            elements += b"\x08" + key + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            if -2**31 <= value < 2**31:
                elements += b"\x10" + key + struct.pack("<i", value)
            else:
                elements += b"\x12" + key + struct.pack("<q", value)
        elif isinstance(value, float):
            elements += b"\x01" + key + struct.pack("<d", value)
        elif isinstance(value, str):
            text = value.encode()
            elements += b"\x02" + key + struct.pack("<i", len(text) + 1) + text + b"\0"
        elif isinstance(value, (bytes, bytearray)):
            elements += b"\x05" + key + struct.pack("<i", len(value)) + b"\x00" + bytes(value)
        elif isinstance(value, Mapping):
            elements += b"\x03" + key + _bson_encode(value)
        else:
            raise TypeError(f"cannot encode {type(value).__name__} as BSON")
    return struct.pack("<i", len(elements) + 5) + bytes(elements) + b"\0"


def _bson_decode(data: bytes) -> dict:
    """Decode one whole document; ValueError (or struct.error) on anything malformed."""
    if len(data) < 5:
        raise ValueError("truncated BSON document")
    length = struct.unpack_from("<i", data)[0]
    if length != len(data) or data[-1] != 0:
        raise ValueError("malformed BSON document")
    document: dict = {}
    position, end = 4, length - 1
    while position < end:
        kind = data[position]
        name_end = data.index(b"\0", position + 1, end)
        name = data[position + 1:name_end].decode()
        position = name_end + 1
        if kind == 0x01:
            value, size = struct.unpack_from("<d", data, position)[0], 8
        elif kind == 0x02:
            count = struct.unpack_from("<i", data, position)[0]
            if count < 1 or position + 4 + count > end or data[position + 3 + count] != 0:
                raise ValueError("malformed BSON string")
            value, size = data[position + 4:position + 3 + count].decode(), 4 + count
        elif kind in (0x03, 0x04):
            size = struct.unpack_from("<i", data, position)[0]
            if size < 5 or position + size > end:
                raise ValueError("malformed embedded BSON document")
            value = _bson_decode(data[position:position + size])
            if kind == 0x04:
                value = list(value.values())
        elif kind == 0x05:
            count = struct.unpack_from("<i", data, position)[0]
            if count < 0 or position + 5 + count > end:
                raise ValueError("malformed BSON binary")
            value, size = data[position + 5:position + 5 + count], 5 + count
        elif kind == 0x08:
            value, size = data[position] != 0, 1
        elif kind == 0x10:
            value, size = struct.unpack_from("<i", data, position)[0], 4
        elif kind == 0x12:
            value, size = struct.unpack_from("<q", data, position)[0], 8
        elif kind in _BSON_FIXED_SIZES:
            value, size = None, _BSON_FIXED_SIZES[kind]
        else:
            raise ValueError(f"unsupported BSON type 0x{kind:02x} in the reply")
        if position + size > end:
            raise ValueError("truncated BSON document")
        position += size
        if value is not None or kind == 0x0A:
            document[name] = value
    return document


_OP_MSG = 2013


def _op_msg_send(sock: socket.socket, request_id: int, command: Mapping) -> None:
    body = struct.pack("<I", 0) + b"\x00" + _bson_encode(command)  # flagBits 0, one kind-0 section
    sock.sendall(struct.pack("<iiii", 16 + len(body), request_id, 0, _OP_MSG) + body)


def _op_msg_receive(sock: socket.socket, request_id: int) -> dict:
    length, _, response_to, opcode = struct.unpack("<iiii", _recv_exact(sock, 16))
    if length < 21 or length > 48 * 1024 * 1024:
        raise ValueError(f"implausible reply length {length}")
    payload = _recv_exact(sock, length - 16)
    if opcode != _OP_MSG:
        raise ValueError(f"unexpected reply opcode {opcode}")
    if response_to != request_id:
        raise ValueError(f"reply to request {response_to}, expected {request_id}")
    flags = struct.unpack_from("<I", payload)[0]
    end = len(payload) - 4 if flags & 1 else len(payload)  # checksumPresent: CRC-32C trails
    position, body = 4, None
    while position < end:
        kind = payload[position]
        size = struct.unpack_from("<i", payload, position + 1)[0]
        if size < 5 or position + 1 + size > end:
            raise ValueError("malformed OP_MSG section")
        if kind == 0:
            body = _bson_decode(payload[position + 1:position + 1 + size])
        elif kind != 1:  # kind 1, a document sequence, is skipped
            raise ValueError(f"unknown OP_MSG section kind {kind}")
        position += 1 + size
    if body is None:
        raise ValueError("reply without a body section")
    return body


def _mongo_failed(reply: Mapping) -> str | None:
    """None when the reply says ok: 1, else the server's message."""
    ok = reply.get("ok")
    if isinstance(ok, (int, float)) and not isinstance(ok, bool) and ok == 1:
        return None
    message = reply.get("errmsg")
    return message if isinstance(message, str) and message else f"command answered ok: {ok!r}"


def _probe_mongodb(readiness, host, port, credentials) -> ProbeResult:
    user, password = credentials.get("user", ""), credentials.get("password", "")
    scram = _Scram(password, user)
    with _connect(host, port) as sock:
        request_ids = iter(range(1, 100))

        def command(document: Mapping) -> dict:
            request_id = next(request_ids)
            _op_msg_send(sock, request_id, {**document, "$db": "admin"})
            return _op_msg_receive(sock, request_id)

        reply = command({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": scram.client_first().encode(),
                         "autoAuthorize": 1, "options": {"skipEmptyExchange": True}})
        if (failure := _mongo_failed(reply)) is not None:
            return False, failure
        conversation, server_first = reply.get("conversationId"), reply.get("payload")
        if not isinstance(server_first, bytes) or not isinstance(conversation, int) or isinstance(conversation, bool):
            return False, "saslStart answered without a SCRAM conversation"
        client_final = scram.client_final(server_first.decode())
        reply = command({"saslContinue": 1, "conversationId": conversation, "payload": client_final.encode()})
        if (failure := _mongo_failed(reply)) is not None:
            return False, failure
        server_final = reply.get("payload")
        if not isinstance(server_final, bytes) or not scram.verify_server(server_final.decode()):
            return False, "server signature did not verify"
        if reply.get("done") is not True:
            # A server that ignores skipEmptyExchange wants one more, empty, round.
            reply = command({"saslContinue": 1, "conversationId": conversation, "payload": b""})
            if (failure := _mongo_failed(reply)) is not None:
                return False, failure
            if reply.get("done") is not True:
                return False, "SCRAM conversation did not finish"
        reply = command({"ping": 1})
        if (failure := _mongo_failed(reply)) is not None:
            return False, failure
        return True, "authenticated ping answered ok"


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
