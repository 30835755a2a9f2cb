"""MongoDB's wire protocol: a minimal BSON codec, OP_MSG, and a SCRAM-SHA-256 login.

The BSON codec handles just the types these few commands and their replies use. Decoding
skips the fixed-size types a reply may carry besides (ObjectId, dates, timestamps, null,
decimal128, min/max key); any other type makes the reply unreadable (ValueError).
"""

from __future__ import annotations

import socket
import struct
from typing import Mapping

from paas_svc.kinds.protocols import ProtocolError, recv_exact
from paas_svc.kinds.protocols.scram import ScramClient

BSON_FIXED_SIZES = {0x07: 12, 0x09: 8, 0x0A: 0, 0x11: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}


def cstring(name: str) -> bytes:
    encoded = name.encode()
    if b"\0" in encoded:
        raise ValueError("BSON names cannot contain NUL")
    return encoded + b"\0"


def encode(document: Mapping) -> bytes:
    elements = bytearray()
    for name, value in document.items():
        key = cstring(name)
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
            elements += b"\x03" + key + encode(value)
        else:
            raise TypeError(f"cannot encode {type(value).__name__} as BSON")
    return struct.pack("<i", len(elements) + 5) + bytes(elements) + b"\0"


def decode(data: bytes) -> dict:
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
            value = decode(data[position:position + size])
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
        elif kind in BSON_FIXED_SIZES:
            value, size = None, BSON_FIXED_SIZES[kind]
        else:
            raise ValueError(f"unsupported BSON type 0x{kind:02x} in the reply")
        if position + size > end:
            raise ValueError("truncated BSON document")
        position += size
        if value is not None or kind == 0x0A:
            document[name] = value
    return document


OP_MSG = 2013


def op_msg_send(sock: socket.socket, request_id: int, command: Mapping) -> None:
    body = struct.pack("<I", 0) + b"\x00" + encode(command)  # flagBits 0, one kind-0 section
    sock.sendall(struct.pack("<iiii", 16 + len(body), request_id, 0, OP_MSG) + body)


def op_msg_receive(sock: socket.socket, request_id: int) -> dict:
    length, _, response_to, opcode = struct.unpack("<iiii", recv_exact(sock, 16))
    if length < 21 or length > 48 * 1024 * 1024:
        raise ValueError(f"implausible reply length {length}")
    payload = recv_exact(sock, length - 16)
    if opcode != OP_MSG:
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
            body = decode(payload[position + 1:position + 1 + size])
        elif kind != 1:  # kind 1, a document sequence, is skipped
            raise ValueError(f"unknown OP_MSG section kind {kind}")
        position += 1 + size
    if body is None:
        raise ValueError("reply without a body section")
    return body


def reply_failure(reply: Mapping) -> str | None:
    """None when the reply says ok: 1, else the server's message."""
    ok = reply.get("ok")
    if isinstance(ok, (int, float)) and not isinstance(ok, bool) and ok == 1:
        return None
    message = reply.get("errmsg")
    return message if isinstance(message, str) and message else f"command answered ok: {ok!r}"


def login_and_ping(sock: socket.socket, user: str, password: str) -> None:
    """SCRAM-SHA-256 as `user` against the admin database, then ping. ProtocolError when refused."""
    scram = ScramClient(password, user)
    request_ids = iter(range(1, 100))

    def command(document: Mapping) -> dict:
        request_id = next(request_ids)
        op_msg_send(sock, request_id, {**document, "$db": "admin"})
        return op_msg_receive(sock, request_id)

    reply = command({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": scram.client_first().encode(),
                     "autoAuthorize": 1, "options": {"skipEmptyExchange": True}})
    if (error := reply_failure(reply)) is not None:
        raise ProtocolError(error)
    conversation, server_first = reply.get("conversationId"), reply.get("payload")
    if not isinstance(server_first, bytes) or not isinstance(conversation, int) or isinstance(conversation, bool):
        raise ProtocolError("saslStart answered without a SCRAM conversation")
    client_final = scram.client_final(server_first.decode())
    reply = command({"saslContinue": 1, "conversationId": conversation, "payload": client_final.encode()})
    if (error := reply_failure(reply)) is not None:
        raise ProtocolError(error)
    server_final = reply.get("payload")
    if not isinstance(server_final, bytes) or not scram.verify_server(server_final.decode()):
        raise ProtocolError("server signature did not verify")
    if reply.get("done") is not True:
        # A server that ignores skipEmptyExchange wants one more, empty, round.
        reply = command({"saslContinue": 1, "conversationId": conversation, "payload": b""})
        if (error := reply_failure(reply)) is not None:
            raise ProtocolError(error)
        if reply.get("done") is not True:
            raise ProtocolError("SCRAM conversation did not finish")
    reply = command({"ping": 1})
    if (error := reply_failure(reply)) is not None:
        raise ProtocolError(error)
