"""Encrypting service credentials with Fernet under the master key(s)."""

from __future__ import annotations

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_CHECK_PLAINTEXT = b"paas-svc key check"


class SecretBox:
    """Encrypts with the first key, decrypts with any (old keys are kept during rotation)."""

    def __init__(self, keys: list[bytes]):
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, values: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, str]:
        """Raises InvalidToken when no key opens the token."""
        return json.loads(self._fernet.decrypt(token.encode()))

    def rotate(self, token: str) -> str:
        """`token` re-encrypted under the first key (any key may open it); raises InvalidToken."""
        return self._fernet.rotate(token.encode()).decode()

    def key_check_token(self) -> str:
        return self._fernet.encrypt(KEY_CHECK_PLAINTEXT).decode()

    def opens_token(self, token: str) -> bool:
        """True when one of the keys decrypts `token`."""
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def opens(self, key_check_token: str) -> bool:
        try:
            return self._fernet.decrypt(key_check_token.encode()) == KEY_CHECK_PLAINTEXT
        except InvalidToken:
            return False


def new_key() -> bytes:
    return Fernet.generate_key()


def is_valid_key(key: bytes) -> bool:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        return False
    return True


__all__ = ["SecretBox", "InvalidToken", "new_key", "is_valid_key"]
