"""AMQP 0-9-1 connection handshake (RabbitMQ, LavinMQ, ...), with PLAIN login.

    C: "AMQP" 0 0 9 1
    S: connection.start (mechanisms, locales)   C: connection.start-ok (PLAIN \\0user\\0password)
    S: connection.tune                           C: connection.tune-ok, connection.open (vhost)
    S: connection.open-ok                        C: connection.close   S: connection.close-ok

We advertise the `authentication_failure_close` capability so that a wrong password gets a
connection.close with ACCESS_REFUSED instead of a silently dropped socket. A server that
speaks another protocol version answers the header with its own header and hangs up.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from paas_svc.kinds.protocols import ProtocolError, recv_exact

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD = 1
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
MAX_FRAME = 128 * 1024

CONNECTION = 10
START, START_OK, TUNE, TUNE_OK, OPEN, OPEN_OK, CLOSE, CLOSE_OK = 10, 11, 30, 31, 40, 41, 50, 51
METHOD_NAMES = {(CONNECTION, START): "connection.start", (CONNECTION, TUNE): "connection.tune",
                (CONNECTION, OPEN_OK): "connection.open-ok", (CONNECTION, CLOSE): "connection.close",
                (CONNECTION, CLOSE_OK): "connection.close-ok"}


@dataclass(frozen=True)
class Method:
    class_id: int
    method_id: int
    arguments: bytes

    @property
    def name(self) -> str:
        return METHOD_NAMES.get((self.class_id, self.method_id), f"method {self.class_id}.{self.method_id}")


# -- field encoders / decoders ----------------------------------------------------------

def shortstr(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 255:
        raise ValueError("short string longer than 255 bytes")
    return bytes([len(raw)]) + raw


def longstr(raw: bytes) -> bytes:
    return struct.pack("!I", len(raw)) + raw


def table(fields: dict) -> bytes:
    """A field table of strings, booleans, integers and nested tables."""
    out = bytearray()
    for name, value in fields.items():
        out += shortstr(name)
        if isinstance(value, bool):
            out += b"t" + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            out += b"I" + struct.pack("!i", value)
        elif isinstance(value, str):
            out += b"S" + longstr(value.encode())
        elif isinstance(value, dict):
            out += b"F" + table(value)
        else:
            raise TypeError(f"cannot encode {type(value).__name__} in an AMQP table")
    return longstr(bytes(out))


class Reader:
    def __init__(self, data: bytes):
        self.data, self.position = data, 0

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise ProtocolError("truncated AMQP method")
        chunk = self.data[self.position:self.position + count]
        self.position += count
        return chunk

    def octet(self) -> int:
        return self.take(1)[0]

    def short(self) -> int:
        return struct.unpack("!H", self.take(2))[0]

    def long(self) -> int:
        return struct.unpack("!I", self.take(4))[0]

    def shortstr(self) -> str:
        return self.take(self.octet()).decode(errors="replace")

    def longstr(self) -> bytes:
        return self.take(self.long())

    def skip_table(self) -> None:
        self.take(self.long())


# -- frames -------------------------------------------------------------------------------

def method_frame(class_id: int, method_id: int, arguments: bytes, channel: int = 0) -> bytes:
    payload = struct.pack("!HH", class_id, method_id) + arguments
    return struct.pack("!BHI", FRAME_METHOD, channel, len(payload)) + payload + bytes([FRAME_END])


def read_method(sock: socket.socket) -> Method:
    """The next method frame (heartbeats are skipped)."""
    while True:
        header = recv_exact(sock, 7)
        if header[:4] == b"AMQP":
            versions = header[4:] + recv_exact(sock, 1)
            raise ProtocolError(f"the server speaks AMQP {versions[1]}-{versions[2]}-{versions[3]}, not 0-9-1")
        frame_type, _channel, size = struct.unpack("!BHI", header)
        if size > MAX_FRAME:
            raise ProtocolError(f"implausible AMQP frame size {size}")
        payload = recv_exact(sock, size)
        if recv_exact(sock, 1)[0] != FRAME_END:
            raise ProtocolError("AMQP frame without its end marker")
        if frame_type == FRAME_HEARTBEAT:
            continue
        if frame_type != FRAME_METHOD or len(payload) < 4:
            raise ProtocolError(f"unexpected AMQP frame type {frame_type} during the handshake")
        class_id, method_id = struct.unpack_from("!HH", payload)
        return Method(class_id, method_id, payload[4:])


def close_reason(method: Method) -> str:
    reader = Reader(method.arguments)
    code, text = reader.short(), reader.shortstr()
    return f"{text} (code {code})"


def expect(sock: socket.socket, method_id: int) -> Method:
    method = read_method(sock)
    if (method.class_id, method.method_id) == (CONNECTION, CLOSE):
        raise ProtocolError("the server closed the connection: " + close_reason(method))
    if (method.class_id, method.method_id) != (CONNECTION, method_id):
        expected = METHOD_NAMES.get((CONNECTION, method_id), str(method_id))
        raise ProtocolError(f"expected {expected}, got {method.name}")
    return method


def start_ok(user: str, password: str) -> bytes:
    properties = table({"product": "paas-svc readiness probe",
                        "capabilities": {"authentication_failure_close": True}})
    response = b"\0" + user.encode() + b"\0" + password.encode()
    return method_frame(CONNECTION, START_OK, properties + shortstr("PLAIN") + longstr(response) + shortstr("en_US"))


def open_connection(sock: socket.socket, user: str, password: str, vhost: str = "/") -> None:
    """Handshake, log in and open the virtual host; ProtocolError with the server's reason when refused."""
    sock.sendall(PROTOCOL_HEADER)
    start = Reader(expect(sock, START).arguments)
    major, minor = start.octet(), start.octet()
    if (major, minor) != (0, 9):
        raise ProtocolError(f"the server offers AMQP {major}-{minor}")
    start.skip_table()  # server properties
    mechanisms = start.longstr().decode(errors="replace").split()
    if "PLAIN" not in mechanisms:
        raise ProtocolError(f"the server does not offer PLAIN login (only {', '.join(mechanisms) or 'nothing'})")
    sock.sendall(start_ok(user, password))
    tune = Reader(expect(sock, TUNE).arguments)
    channel_max, frame_max = tune.short(), tune.long()  # then the heartbeat, unused
    tune_ok = struct.pack("!HIH", channel_max, frame_max or MAX_FRAME, 0)  # no heartbeats: a short session
    sock.sendall(method_frame(CONNECTION, TUNE_OK, tune_ok))
    sock.sendall(method_frame(CONNECTION, OPEN, shortstr(vhost) + shortstr("") + b"\x00"))
    expect(sock, OPEN_OK)


def close(sock: socket.socket) -> None:
    sock.sendall(method_frame(CONNECTION, CLOSE, struct.pack("!H", 200) + shortstr("bye") + struct.pack("!HH", 0, 0)))
    expect(sock, CLOSE_OK)
