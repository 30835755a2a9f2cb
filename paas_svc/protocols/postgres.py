"""PostgreSQL frontend/backend protocol 3.0: the startup message and password authentication
(SCRAM-SHA-256, md5, cleartext), up to ReadyForQuery."""

from __future__ import annotations

import hashlib
import socket
import struct

from paas_svc.protocols import ProtocolError, recv_exact
from paas_svc.protocols.scram import ScramClient

PROTOCOL_3 = 196608


def message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    header = recv_exact(sock, 5)
    kind, length = header[:1], struct.unpack("!I", header[1:])[0]
    return kind, recv_exact(sock, length - 4)


def error_text(payload: bytes) -> str:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode(errors="replace")
    return fields.get(b"M", "error")


def startup(user: str, database: str) -> bytes:
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    return struct.pack("!II", len(params) + 8, PROTOCOL_3) + params


def login(sock: socket.socket, user: str, password: str, database: str) -> None:
    """Log in; returns at ReadyForQuery (then sends Terminate). ProtocolError when refused."""
    sock.sendall(startup(user, database))
    scram: ScramClient | None = None
    while True:
        kind, payload = read_message(sock)
        if kind == b"E":
            raise ProtocolError(error_text(payload))
        if kind == b"Z":
            sock.sendall(message(b"X", b""))
            return
        if kind != b"R":
            continue  # ParameterStatus, BackendKeyData, notices
        code = struct.unpack("!I", payload[:4])[0]
        if code == 0:
            continue
        if code == 3:
            sock.sendall(message(b"p", password.encode() + b"\0"))
        elif code == 5:
            salt = payload[4:8]
            inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
            sock.sendall(message(b"p", b"md5" + hashlib.md5(inner + salt).hexdigest().encode() + b"\0"))
        elif code == 10:
            scram = ScramClient(password)
            first = scram.client_first().encode()
            sock.sendall(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
        elif code == 11 and scram is not None:
            sock.sendall(message(b"p", scram.client_final(payload[4:].decode()).encode()))
        elif code == 12 and scram is not None:
            if not scram.verify_server(payload[4:].decode()):
                raise ProtocolError("server signature did not verify")
        else:
            raise ProtocolError(f"unsupported authentication request {code}")
