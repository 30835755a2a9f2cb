"""PostgreSQL frontend/backend protocol 3.0: the startup message and a SCRAM-SHA-256 login,
up to ReadyForQuery."""

from __future__ import annotations

import socket
import struct

from paas_svc.kinds.protocols import ProtocolError, recv_exact
from paas_svc.kinds.protocols.scram import ScramClient

PROTOCOL_3 = 196608
SSL_REQUEST_CODE = 80877103


def message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


# SCRAM-SHA-256 only: whatever listens on the port gets no usable secret. A cleartext or md5
# request (which would hand it the password, or a hash that replays as well as the password)
# is refused before anything is sent, and a login counts only once the server has proved,
# with its SCRAM signature, that it knows the password itself.
AUTH_NAMES = {3: "a cleartext password", 5: "an md5 password hash", 7: "GSSAPI", 9: "SSPI"}
MAX_MESSAGE_BYTES = 1024 * 1024


def read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    header = recv_exact(sock, 5)
    kind, length = header[:1], struct.unpack("!I", header[1:])[0]
    if length < 4 or length > MAX_MESSAGE_BYTES:
        raise ValueError(f"implausible message length {length}")
    return kind, recv_exact(sock, length - 4)


def printable(text: str, limit: int = 200) -> str:
    """Text from the server, safe to show: control characters replaced, bounded."""
    return "".join(char if char.isprintable() else "?" for char in text[:limit])


def error_text(payload: bytes) -> str:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode(errors="replace")
    return printable(fields.get(b"M", "error"))


def startup(user: str, database: str) -> bytes:
    params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    return struct.pack("!II", len(params) + 8, PROTOCOL_3) + params


def start_tls(sock: socket.socket, context, server_hostname: str) -> socket.socket:
    """SSLRequest, then the TLS handshake (the server's certificate verified by `context`):
    the socket to log in over. ProtocolError when the server does not speak TLS."""
    sock.sendall(struct.pack("!II", 8, SSL_REQUEST_CODE))
    answer = recv_exact(sock, 1)
    if answer != b"S":
        raise ProtocolError("the server does not accept TLS connections (it answered the SSLRequest with "
                            f"{answer!r}); the password was not sent")
    return context.wrap_socket(sock, server_hostname=server_hostname)


def login(sock: socket.socket, user: str, password: str, database: str) -> None:
    """Log in with SCRAM-SHA-256; returns at ReadyForQuery (then sends Terminate) once the
    server's signature verified. ProtocolError when refused or when the server asks for
    anything else."""
    sock.sendall(startup(user, database))
    scram: ScramClient | None = None
    verified = False
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
            if not verified:
                raise ProtocolError("the server let the login in without proving it knows the password (no SCRAM exchange)")
            continue
        if code == 10:
            mechanisms = [name for name in payload[4:].split(b"\0") if name]
            if b"SCRAM-SHA-256" not in mechanisms:
                offered = ", ".join(printable(name.decode(errors="replace"), 40) for name in mechanisms[:5]) or "none"
                raise ProtocolError(f"the server offers no SCRAM-SHA-256 login (offers: {offered}); the password was not sent")
            scram = ScramClient(password)
            first = scram.client_first().encode()
            sock.sendall(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
        elif code == 11 and scram is not None:
            sock.sendall(message(b"p", scram.client_final(payload[4:].decode()).encode()))
        elif code == 12 and scram is not None:
            if not scram.verify_server(payload[4:].decode()):
                raise ProtocolError("server signature did not verify")
            verified = True
        elif code in AUTH_NAMES:
            raise ProtocolError(f"the server asked for {AUTH_NAMES[code]}; paas logs in only with SCRAM-SHA-256 "
                                "and did not send the password")
        else:
            raise ProtocolError(f"unsupported authentication request {code}")
