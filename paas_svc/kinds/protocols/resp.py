"""RESP, the Redis (and Valkey) protocol: just commands out and simple-string lines back."""

from __future__ import annotations


def command(*parts: str) -> bytes:
    encoded = [part.encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


def read_line(reader) -> bytes:
    line = reader.readline()
    if not line:
        raise EOFError("connection closed by the server")
    return line.rstrip(b"\r\n")
