"""Wire-protocol codecs, written against the protocols' specifications with the standard
library only (plus `cryptography` for MySQL's RSA password exchange): MySQL's handshake and
login, AMQP 0-9-1's connection handshake. The readiness probes of the service kinds use them
so that "ready" means "a real client could log in", without shipping client libraries.

Every function here talks to one socket and raises ProtocolError (or OSError/EOFError) when
the server says no or says something unexpected; none of them prints or sleeps.
"""

from __future__ import annotations

import socket


class ProtocolError(Exception):
    """The server answered, but not with what a successful login looks like."""


def recv_exact(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise EOFError("connection closed by the server")
        chunks.extend(chunk)
    return bytes(chunks)


CONNECT_TIMEOUT_SECONDS = 2.0


def connect(host: str, port: int, timeout: float = CONNECT_TIMEOUT_SECONDS) -> socket.socket:
    # An ASCII host goes to getaddrinfo as bytes: a str host makes CPython import the idna
    # codec (with stringprep and unicodedata), a few ms on every readiness probe of `svc add`.
    return socket.create_connection((host.encode("ascii") if host.isascii() else host, port), timeout=timeout)
