"""MySQL / MariaDB client protocol: the connection phase and COM_QUIT.

Enough to log in as a real client does (protocol 41, plugin auth): the server's initial
handshake (protocol version 10), our handshake response, an optional auth switch, and the
two password plugins a server asks for by default:
- mysql_native_password (MariaDB, MySQL <= 5.7): SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)));
- caching_sha2_password (MySQL >= 8.0): XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) + scramble)),
  answered by "fast auth ok", or by "full auth needed", where a connection without TLS asks
  for the server's RSA public key and sends the password encrypted with it (RSA-OAEP, SHA-1).
The password travels only as these scrambles or RSA-encrypted, never in clear.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from dataclasses import dataclass

from paas_svc.kinds.protocols import ProtocolError, recv_exact

CLIENT_LONG_PASSWORD = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
UTF8MB4_GENERAL_CI = 45
MAX_PACKET = 16 * 1024 * 1024 - 1
COM_QUIT = 0x01

NATIVE = "mysql_native_password"
CACHING_SHA2 = "caching_sha2_password"
SHA2_REQUEST_PUBLIC_KEY = b"\x02"
SHA2_FAST_AUTH_OK = 3
SHA2_FULL_AUTH_NEEDED = 4


@dataclass(frozen=True)
class Handshake:
    server_version: str
    scramble: bytes  # 20 bytes of auth-plugin-data
    capabilities: int
    auth_plugin: str


class Connection:
    """Packets over one socket, with MySQL's sequence numbers."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sequence = 0

    def read(self) -> bytes:
        header = recv_exact(self.sock, 4)
        length = header[0] | header[1] << 8 | header[2] << 16
        self.sequence = (header[3] + 1) % 256
        return recv_exact(self.sock, length)

    def write(self, payload: bytes) -> None:
        if len(payload) >= MAX_PACKET:
            raise ValueError("packet too large")
        self.sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([self.sequence]) + payload)
        self.sequence = (self.sequence + 1) % 256


def error_text(packet: bytes) -> str:
    """The message of an ERR packet (0xFF, code, '#' + SQLSTATE, message)."""
    if len(packet) < 3:
        return "error packet"
    code = struct.unpack_from("<H", packet, 1)[0]
    message = packet[3:]
    if message[:1] == b"#":
        message = message[6:]
    return f"{message.decode(errors='replace')} (error {code})"


def parse_handshake(packet: bytes) -> Handshake:
    if packet[:1] == b"\xff":
        raise ProtocolError(error_text(packet))
    if packet[:1] != b"\x0a":
        raise ProtocolError(f"unsupported MySQL protocol version {packet[0] if packet else None}")
    version_end = packet.index(b"\0", 1)
    version = packet[1:version_end].decode(errors="replace")
    position = version_end + 1 + 4  # thread id
    scramble = packet[position:position + 8]
    position += 8 + 1  # filler
    capabilities = struct.unpack_from("<H", packet, position)[0]
    position += 2
    plugin = NATIVE
    if len(packet) > position:
        position += 1 + 2  # character set, status flags
        capabilities |= struct.unpack_from("<H", packet, position)[0] << 16
        position += 2
        data_length = packet[position]
        position += 1 + 10  # reserved (MariaDB keeps its extended capabilities in the last 4)
        if capabilities & CLIENT_SECURE_CONNECTION:
            part_length = max(13, data_length - 8)
            scramble += packet[position:position + part_length].rstrip(b"\0")
            position += part_length
        if capabilities & CLIENT_PLUGIN_AUTH and position < len(packet):
            plugin = packet[position:].split(b"\0", 1)[0].decode()
    if len(scramble) < 20:
        raise ProtocolError("handshake without a 20-byte scramble")
    return Handshake(version, scramble[:20], capabilities, plugin)


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right))


def native_password_scramble(password: str, scramble: bytes) -> bytes:
    if not password:
        return b""
    stage1 = hashlib.sha1(password.encode()).digest()
    stage2 = hashlib.sha1(stage1).digest()
    return _xor(stage1, hashlib.sha1(scramble + stage2).digest())


def caching_sha2_scramble(password: str, scramble: bytes) -> bytes:
    if not password:
        return b""
    stage1 = hashlib.sha256(password.encode()).digest()
    stage2 = hashlib.sha256(hashlib.sha256(stage1).digest() + scramble).digest()
    return _xor(stage1, stage2)


def auth_response(plugin: str, password: str, scramble: bytes) -> bytes:
    if plugin == NATIVE:
        return native_password_scramble(password, scramble)
    if plugin == CACHING_SHA2:
        return caching_sha2_scramble(password, scramble)
    raise ProtocolError(f"the server asks for the {plugin} authentication plugin, which the probe does not speak")


BASE_FLAGS = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH


def ssl_request(database: str) -> bytes:
    """The SSLRequest packet: the first 32 bytes of a handshake response, CLIENT_SSL set."""
    flags = BASE_FLAGS | CLIENT_SSL | (CLIENT_CONNECT_WITH_DB if database else 0)
    return struct.pack("<IIB", flags, MAX_PACKET, UTF8MB4_GENERAL_CI) + b"\0" * 23


def handshake_response(user: str, password: str, database: str, handshake: Handshake, tls: bool = False) -> bytes:
    flags = BASE_FLAGS | (CLIENT_SSL if tls else 0)
    if database:
        flags |= CLIENT_CONNECT_WITH_DB
    plugin = handshake.auth_plugin if handshake.auth_plugin in (NATIVE, CACHING_SHA2) else NATIVE
    response = auth_response(plugin, password, handshake.scramble)
    payload = struct.pack("<IIB", flags, MAX_PACKET, UTF8MB4_GENERAL_CI) + b"\0" * 23
    payload += user.encode() + b"\0" + bytes([len(response)]) + response
    if database:
        payload += database.encode() + b"\0"
    return payload + plugin.encode() + b"\0"


def rsa_encrypted_password(password: str, scramble: bytes, public_key_pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_public_key(public_key_pem)
    plain = password.encode() + b"\0"
    mixed = bytes(byte ^ scramble[i % len(scramble)] for i, byte in enumerate(plain))
    return key.encrypt(mixed, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))


def login(sock: socket.socket, user: str, password: str, database: str = "", ssl_context=None,
          server_hostname: str | None = None) -> Handshake:
    """Log in over an open connection; returns the server's handshake, raises ProtocolError
    with the server's own message when it refuses. With `ssl_context`: TLS first (SSLRequest,
    the server's certificate verified), the login inside it, and COM_QUIT sent at its end."""
    connection = Connection(sock)
    handshake = parse_handshake(connection.read())
    if ssl_context is not None:
        if not handshake.capabilities & CLIENT_SSL:
            raise ProtocolError("the server does not offer TLS; the password was not sent")
        connection.write(ssl_request(database))
        connection.sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname)
    connection.write(handshake_response(user, password, database, handshake, tls=ssl_context is not None))
    plugin = handshake.auth_plugin if handshake.auth_plugin in (NATIVE, CACHING_SHA2) else NATIVE
    scramble = handshake.scramble
    for _ in range(5):  # OK, ERR, or a few rounds of switch / more data
        packet = connection.read()
        marker = packet[:1]
        if marker == b"\x00":
            if ssl_context is not None:
                quit_connection(connection)
            return handshake
        if marker == b"\xff":
            raise ProtocolError(error_text(packet))
        if marker == b"\xfe":  # AuthSwitchRequest: plugin name, then fresh data
            name, _, data = packet[1:].partition(b"\0")
            plugin, scramble = name.decode(), data.rstrip(b"\0")[:20]
            connection.write(auth_response(plugin, password, scramble))
        elif marker == b"\x01" and plugin == CACHING_SHA2:
            if packet[1:2] == bytes([SHA2_FAST_AUTH_OK]):
                continue  # the OK packet follows
            if packet[1:2] == bytes([SHA2_FULL_AUTH_NEEDED]):
                connection.write(SHA2_REQUEST_PUBLIC_KEY)
                key_packet = connection.read()
                if key_packet[:1] != b"\x01":
                    raise ProtocolError("the server did not send its RSA public key")
                connection.write(rsa_encrypted_password(password, scramble, key_packet[1:]))
            else:
                raise ProtocolError("unexpected caching_sha2_password message")
        else:
            raise ProtocolError(f"unexpected packet 0x{packet[0]:02x} during login" if packet else "empty packet during login")
    raise ProtocolError("the login did not finish")


def quit(sock: socket.socket) -> None:
    """COM_QUIT: the polite end of a session."""
    quit_connection(Connection(sock))


def quit_connection(connection: Connection) -> None:
    connection.sequence = 0
    connection.write(bytes([COM_QUIT]))
