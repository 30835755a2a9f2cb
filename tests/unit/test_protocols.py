"""MySQL's caching_sha2_password (MySQL 8's default, which no Debian package serves here)
and the auth-switch path, against an in-test server that checks what the client sends the
way MySQL's server does (the scramble against SHA256(SHA256(password)); the RSA-encrypted
password with its private key)."""

from __future__ import annotations

import hashlib
import socket
import struct
import threading

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from paas_svc.kinds.protocols import ProtocolError, amqp, mysql

PASSWORD = "s3cretPassw0rdLettersOnly"
SCRAMBLE = bytes(range(1, 21))
SWITCH_SCRAMBLE = bytes(range(40, 60))
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def handshake_packet(plugin: str) -> bytes:
    caps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH
    return (b"\x0a" + b"8.0.36\0" + struct.pack("<I", 7) + SCRAMBLE[:8] + b"\0" + struct.pack("<H", caps & 0xFFFF)
            + bytes([45]) + struct.pack("<H", 2) + struct.pack("<H", caps >> 16) + bytes([21]) + b"\0" * 10
            + SCRAMBLE[8:] + b"\0" + plugin.encode() + b"\0")


def sha2_ok(response: bytes, scramble: bytes) -> bool:
    stored = hashlib.sha256(hashlib.sha256(PASSWORD.encode()).digest()).digest()
    candidate = bytes(a ^ b for a, b in zip(response, hashlib.sha256(stored + scramble).digest()))
    return hashlib.sha256(candidate).digest() == stored


def native_ok(response: bytes, scramble: bytes) -> bool:
    return response == mysql.native_password_scramble(PASSWORD, scramble)


def auth_data(packet: bytes) -> bytes:
    user_end = packet.index(b"\0", 32)
    length = packet[user_end + 1]
    return packet[user_end + 2:user_end + 2 + length]


def serve(mode: str) -> tuple[int, list[str]]:
    """One connection; mode: fast | full | switch | wrong."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def run():
        conn, _ = listener.accept()
        with conn, listener:
            link = mysql.Connection(conn)
            link.write(handshake_packet(mysql.CACHING_SHA2))
            response = auth_data(link.read())
            ok_packet, err_packet = b"\x00\x00\x00\x02\x00\x00\x00", b"\xff\x15\x04#28000Access denied for user 'app'"
            if mode == "switch":
                link.write(b"\xfe" + mysql.NATIVE.encode() + b"\0" + SWITCH_SCRAMBLE + b"\0")
                answer = link.read()
                seen.append("switched")
                link.write(ok_packet if native_ok(answer, SWITCH_SCRAMBLE) else err_packet)
                return
            if not sha2_ok(response, SCRAMBLE):
                link.write(err_packet)
                return
            if mode == "fast":
                link.write(b"\x01\x03")
                link.write(ok_packet)
                return
            link.write(b"\x01\x04")  # full authentication: no cache entry yet
            if link.read() != b"\x02":
                return
            seen.append("public key requested")
            pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            link.write(b"\x01" + pem)
            encrypted = link.read()
            plain = RSA_KEY.decrypt(encrypted, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))
            password = bytes(b ^ SCRAMBLE[i % 20] for i, b in enumerate(plain))
            link.write(ok_packet if password == PASSWORD.encode() + b"\0" else err_packet)

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1], seen


def login(port: int, password: str = PASSWORD) -> mysql.Handshake:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        return mysql.login(sock, "app", password, "db")


@pytest.mark.parametrize("mode", ["fast", "full", "switch"])
def test_caching_sha2_and_switch_logins(mode):
    port, seen = serve(mode)
    assert login(port).auth_plugin == mysql.CACHING_SHA2
    assert seen == {"fast": [], "full": ["public key requested"], "switch": ["switched"]}[mode]


@pytest.mark.parametrize("mode", ["fast", "full", "switch"])
def test_wrong_password_is_refused_with_the_servers_message(mode):
    port, _ = serve(mode)
    with pytest.raises(ProtocolError, match=r"Access denied for user 'app' \(error 1045\)"):
        login(port, PASSWORD + "x")


def test_handshake_error_packet_is_reported():
    with pytest.raises(ProtocolError, match="Too many connections"):
        mysql.parse_handshake(b"\xff\x10\x04Too many connections")


def test_amqp_table_and_frame_encoding():
    encoded = amqp.table({"product": "x", "capabilities": {"authentication_failure_close": True}})
    assert encoded == (struct.pack("!I", 63) + b"\x07productS" + struct.pack("!I", 1) + b"x"
                       + b"\x0ccapabilitiesF" + struct.pack("!I", 31) + b"\x1cauthentication_failure_closet\x01")
    frame = amqp.method_frame(10, 51, b"")
    assert frame == b"\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x33\xce"


def test_amqp_version_mismatch_is_explained():
    listener = socket.create_server(("127.0.0.1", 0))

    def run():
        conn, _ = listener.accept()
        with conn, listener:
            conn.recv(8)
            conn.sendall(b"AMQP\x00\x01\x00\x00")  # an AMQP 1.0 server

    threading.Thread(target=run, daemon=True).start()
    with socket.create_connection(listener.getsockname(), timeout=5) as sock:
        with pytest.raises(ProtocolError, match="speaks AMQP 1-0-0"):
            amqp.open_connection(sock, "app", "pw")


def test_connect_to_an_ascii_host_does_not_load_the_idna_codec():
    import subprocess
    import sys

    code = (
        "import socket, sys\n"
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen(1)\n"
        "from paas_svc.kinds.protocols import connect\n"
        "connect('127.0.0.1', server.getsockname()[1]).close()\n"
        "connect('localhost', server.getsockname()[1]).close()\n"
        "print('encodings.idna' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
