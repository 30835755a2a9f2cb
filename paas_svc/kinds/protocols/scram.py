"""SCRAM-SHA-256 client (RFC 5802 / RFC 7677), as PostgreSQL and MongoDB speak it.

Generated passwords are letters and digits, where SASLprep is the identity."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


class ScramClient:
    def __init__(self, password: str, username: str = "", nonce: str | None = None):
        # PostgreSQL ignores the SCRAM user name (it takes the startup message's), so it
        # sends "n="; MongoDB needs it, with "=" and "," escaped as RFC 5802 says.
        # `nonce`: a fixed client nonce, for the RFC's test vectors only.
        self._password = password.encode()
        self._nonce = nonce or base64.b64encode(os.urandom(18)).decode()
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
