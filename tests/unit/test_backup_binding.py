"""The service binding in the header of an encrypted backup (format version 2): authenticated
with every chunk, checked before any plaintext is written, and version 1 files still read."""

from __future__ import annotations

import io
import os
import struct

import pytest

from paas_svc.secrets.backup_cipher import (
    CHUNK_SIZE,
    HEADER_BYTES,
    DecryptionFailed,
    EncryptedHeader,
    decrypt_stream,
    encode_binding,
    encrypt_stream,
    key_id,
    read_header,
)
from tests.support import cipher_v1

KEY = bytes(range(32))
BINDING = {"project": "shop", "env": "production", "slug": "db", "kind": "postgres"}


def encrypt(plain: bytes, binding=BINDING) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), out, KEY, binding)
    return out.getvalue()


def decrypt(blob: bytes, check=None) -> tuple[EncryptedHeader, bytes]:
    out = io.BytesIO()
    header = decrypt_stream(io.BytesIO(blob), out, {key_id(KEY): KEY}.get, check_header=check)
    return header, out.getvalue()


def version1_file(plain: bytes) -> bytes:
    return cipher_v1.version1_file(plain, KEY, key_id(KEY))


def test_the_binding_is_in_the_header_and_comes_back_with_the_plaintext():
    plain = os.urandom(2 * CHUNK_SIZE + 9)
    blob = encrypt(plain)
    assert blob[8] == 2  # format version
    assert b'"slug":"db"' in blob[:200]
    header, out = decrypt(blob)
    assert out == plain and header.version == 2 and header.binding == BINDING
    assert read_header(io.BytesIO(blob), "x").binding == BINDING  # readable before decrypting (listing, early refusal)


@pytest.mark.parametrize("old, new", [(b'"slug":"db"', b'"slug":"dc"'), (b'"env":"production"', b'"env":"productioo"'),
                                      (b'"kind":"postgres"', b'"kind":"postgret"')])
def test_a_changed_binding_does_not_authenticate(old, new):
    blob = encrypt(b"data of shop/production/db")
    forged = blob.replace(old, new, 1)
    assert forged != blob and len(forged) == len(blob)
    with pytest.raises(DecryptionFailed, match="does not decrypt"):
        decrypt(forged)


def test_the_check_runs_after_the_first_chunk_authenticates_and_before_any_plaintext():
    blob = encrypt(os.urandom(3 * CHUNK_SIZE))
    seen = []

    class Refused(Exception):
        pass

    def refuse(header: EncryptedHeader) -> None:
        seen.append(header.binding)
        raise Refused

    out = io.BytesIO()
    with pytest.raises(Refused):
        decrypt_stream(io.BytesIO(blob), out, {key_id(KEY): KEY}.get, check_header=refuse)
    assert seen == [BINDING] and out.getvalue() == b""
    # A forged binding never reaches the check: the first chunk fails first.
    seen.clear()
    with pytest.raises(DecryptionFailed):
        decrypt_stream(io.BytesIO(blob.replace(b'"slug":"db"', b'"slug":"xx"')), io.BytesIO(), {key_id(KEY): KEY}.get,
                       check_header=refuse)
    assert seen == []


def test_version_1_files_still_decrypt_without_a_binding():
    plain = os.urandom(CHUNK_SIZE + 5)
    header, out = decrypt(version1_file(plain))
    assert out == plain and header.version == 1 and header.binding is None
    header, out = decrypt(version1_file(b""))
    assert out == b"" and header.binding is None


def test_unknown_versions_and_malformed_bindings_are_refused():
    blob = bytearray(encrypt(b"x"))
    blob[8] = 3
    with pytest.raises(DecryptionFailed, match="encryption format 3"):
        decrypt(bytes(blob))
    fixed = encrypt(b"x")[:HEADER_BYTES]
    for raw in (b"", b"not json", b'["a"]', b'{"project":"p","env":"e","slug":"s"}',
                b'{"project":"p","env":"e","slug":"s\\u001b[31m","kind":"k"}'):
        with pytest.raises(DecryptionFailed, match="invalid encryption header"):
            decrypt(fixed + struct.pack(">H", len(raw)) + raw + b"\0" * 40)
    with pytest.raises(DecryptionFailed, match="truncated"):
        decrypt(fixed + struct.pack(">H", 200) + b'{"env"')


def test_a_binding_needs_its_four_printable_fields():
    with pytest.raises(ValueError):
        encode_binding({"project": "p", "env": "e", "slug": "s"})
    with pytest.raises(ValueError):
        encode_binding({**BINDING, "slug": "a\nb"})
    with pytest.raises(ValueError):
        encode_binding({**BINDING, "extra": "x"})
    assert encode_binding(BINDING) == b'{"env":"production","kind":"postgres","project":"shop","slug":"db"}'
