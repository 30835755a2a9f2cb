"""Streamed authenticated encryption of backups that leave the host.

Format (all integers big-endian):

    header  = MAGIC (8) | version (1) | chunk size (4) | key id (8) | salt (16) | nonce prefix (7)
              | binding length (2) | binding (JSON)                          <- version 2 only
    chunk i = AES-256-GCM(file key, nonce = prefix | i (4) | final (1), plaintext chunk, aad = header)

The binding (version 2) names the service the backup was taken of: {"env", "kind", "project",
"slug"} as compact JSON with sorted keys. It is part of the header, so every chunk
authenticates it: a file cannot be passed off as another service's backup without the key,
and a restore can refuse another service's backup after the first chunk, before the rest is
read. Version 1 files (no binding) are still read: their service is the one named by the plain
backup header inside the ciphertext (authenticated as part of the plaintext), checked by the
caller once the file is decrypted.

The file key is HKDF-SHA256(backup key, salt): a fresh key per file, so nonces never repeat
across files. Every chunk but the last holds exactly `chunk size` plaintext bytes; the last one
(possibly empty) carries final = 1. The counter in the nonce detects reordered or dropped
chunks, the final flag a file cut at a chunk boundary or extended after its end, and the header
as associated data any change to it (this is the STREAM construction of Hoang et al., as Tink's
streaming AEAD uses it). Memory use is one or two chunks, whatever the size of the backup.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable

from paas_svc.errors import InvalidInput

MAGIC = b"PAASBKE\x00"
VERSION = 2  # 2: the header carries the service binding; 1 (read, never written): no binding
READABLE_VERSIONS = (1, 2)
CHUNK_SIZE = 64 * 1024
TAG_BYTES = 16
KEY_ID_BYTES = 8
SALT_BYTES = 16
PREFIX_BYTES = 7
HEADER = struct.Struct(f">8sBI{KEY_ID_BYTES}s{SALT_BYTES}s{PREFIX_BYTES}s")
HEADER_BYTES = HEADER.size  # the fixed part; a version 2 header goes on with its binding
BINDING_LENGTH = struct.Struct(">H")
BINDING_FIELDS = ("env", "kind", "project", "slug")
MAX_BINDING_BYTES = 1024
MAX_BINDING_VALUE = 128
MAX_CHUNK_SIZE = 16 * 1024 * 1024
EXTENSION = "paasenc"


class DecryptionFailed(InvalidInput):
    """An encrypted backup that does not open: wrong key, tampered with, truncated or not ours."""


def key_id(key: bytes) -> str:
    """A public name for a backup key (hex): tells which key a file needs without revealing it."""
    return hmac.new(key, b"paas-svc backup key id", hashlib.sha256).digest()[:KEY_ID_BYTES].hex()


@dataclass(frozen=True)
class EncryptedHeader:
    raw: bytes  # the whole header as stored: the associated data of every chunk
    version: int
    chunk_size: int
    key_id: str
    salt: bytes
    prefix: bytes
    binding: dict[str, str] | None  # None: a version 1 file


def encode_binding(binding: dict[str, str]) -> bytes:
    """The binding's bytes in the header; refuses a binding without exactly BINDING_FIELDS."""
    if sorted(binding) != list(BINDING_FIELDS) or not all(_valid_value(value) for value in binding.values()):
        raise ValueError(f"a backup binding needs the fields {', '.join(BINDING_FIELDS)} as short printable strings")
    raw = json.dumps(binding, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    if len(raw) > MAX_BINDING_BYTES:
        raise ValueError("backup binding too long")
    return raw


def _valid_value(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_BINDING_VALUE and value.isprintable()


def _decode_binding(raw: bytes, what: str) -> dict[str, str]:
    try:
        binding = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        binding = None
    if not isinstance(binding, dict) or sorted(binding) != list(BINDING_FIELDS) or not all(map(_valid_value, binding.values())):
        raise DecryptionFailed(f"{what} has an invalid encryption header (its service binding). Nothing was changed.")
    return binding


def _file_key(key: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"paas-svc backup file v1").derive(key)


def _nonce(prefix: bytes, counter: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if final else 0)


def is_encrypted(start: bytes) -> bool:
    return start.startswith(MAGIC)


class EncryptingReader:
    """A read()-able stream of the ciphertext of `source` (for boto3's upload_fileobj or a copy).
    Counts and hashes what it hands out. `binding`: the service the backup is of (BINDING_FIELDS)."""

    def __init__(self, source: BinaryIO, key: bytes, binding: dict[str, str], chunk_size: int = CHUNK_SIZE):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt, prefix = os.urandom(SALT_BYTES), os.urandom(PREFIX_BYTES)
        bound = encode_binding(binding)
        self._header = (HEADER.pack(MAGIC, VERSION, chunk_size, bytes.fromhex(key_id(key)), salt, prefix)
                        + BINDING_LENGTH.pack(len(bound)) + bound)
        self._aead = AESGCM(_file_key(key, salt))
        self._source = source
        self._chunk_size = chunk_size
        self._prefix = prefix
        self._counter = 0
        self._next_plain = _read_exact(source, chunk_size)
        self._buffer = bytearray(self._header)
        self._done = False
        self.bytes_out = 0
        self._digest = hashlib.sha256()

    def _encrypt_next(self) -> None:
        plain = self._next_plain
        self._next_plain = _read_exact(self._source, self._chunk_size) if len(plain) == self._chunk_size else b""
        final = not self._next_plain
        self._buffer += self._aead.encrypt(_nonce(self._prefix, self._counter, final), plain, self._header)
        self._counter += 1
        self._done = final

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._encrypt_next()
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:size])
            del self._buffer[:size]
        self.bytes_out += len(out)
        self._digest.update(out)
        return out

    def readable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def encrypt_stream(source: BinaryIO, sink: BinaryIO, key: bytes, binding: dict[str, str]) -> tuple[int, str]:
    """Encrypt all of `source` into `sink`; returns (ciphertext bytes, their sha256)."""
    reader = EncryptingReader(source, key, binding)
    while block := reader.read(1024 * 1024):
        sink.write(block)
    return reader.bytes_out, reader.hexdigest()


def read_header(source: BinaryIO, what: str) -> EncryptedHeader:
    fixed = _read_exact(source, HEADER_BYTES)
    if len(fixed) < HEADER_BYTES or not fixed.startswith(MAGIC):
        raise DecryptionFailed(f"{what} is not an encrypted paas backup. Nothing was changed.")
    _, version, chunk_size, raw_key_id, salt, prefix = HEADER.unpack(fixed)
    if version not in READABLE_VERSIONS:
        raise DecryptionFailed(f"{what} uses encryption format {version}; this paas reads {', '.join(map(str, READABLE_VERSIONS))}.",
                               hint="Upgrade paas-svc to restore it.")
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise DecryptionFailed(f"{what} has an invalid encryption header. Nothing was changed.")
    if version == 1:
        return EncryptedHeader(fixed, version, chunk_size, raw_key_id.hex(), salt, prefix, None)
    length_bytes = _read_exact(source, BINDING_LENGTH.size)
    length = BINDING_LENGTH.unpack(length_bytes)[0] if len(length_bytes) == BINDING_LENGTH.size else 0
    if not 0 < length <= MAX_BINDING_BYTES:
        raise DecryptionFailed(f"{what} has an invalid encryption header (its service binding). Nothing was changed.")
    raw_binding = _read_exact(source, length)
    if len(raw_binding) < length:
        raise DecryptionFailed(f"{what} is truncated (it ends inside its header). Nothing was changed.")
    binding = _decode_binding(raw_binding, what)
    return EncryptedHeader(fixed + length_bytes + raw_binding, version, chunk_size, raw_key_id.hex(), salt, prefix, binding)


def decrypt_stream(source: BinaryIO, sink: BinaryIO, keys: Callable[[str], bytes | None], what: str = "the backup",
                   check_header: Callable[[EncryptedHeader], None] | None = None) -> EncryptedHeader:
    """Decrypt `source` into `sink`, chunk by chunk; returns the header. `keys` maps a key id to
    the key (None: not known here). `check_header` is called with the header once the first
    chunk has authenticated it (so its binding is genuine), before any plaintext reaches `sink`:
    it raises to refuse the file. Raises DecryptionFailed on any tampering, truncation or a
    wrong key; what was written to `sink` by then must be thrown away by the caller."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    parsed = read_header(source, what)
    header, chunk_size, wanted_id, salt, prefix = parsed.raw, parsed.chunk_size, parsed.key_id, parsed.salt, parsed.prefix
    key = keys(wanted_id)
    if key is None:
        raise DecryptionFailed(f"{what} is encrypted with the backup key {wanted_id}, which this profile does not have.",
                               hint="Import that key with `paas key import --backup FILE` (from `paas key export --backup`).")
    aead = AESGCM(_file_key(key, salt))
    block_size = chunk_size + TAG_BYTES
    counter = 0
    current = _read_exact(source, block_size)
    while True:
        following = _read_exact(source, block_size) if len(current) == block_size else b""
        final = not following
        if len(current) < TAG_BYTES:
            raise DecryptionFailed(f"{what} is truncated (it ends inside a chunk). Nothing was changed.")
        try:
            plain = aead.decrypt(_nonce(prefix, counter, final), current, header)
        except InvalidTag:
            reason = "truncated, or altered" if final else "altered (a chunk does not authenticate)"
            raise DecryptionFailed(f"{what} does not decrypt: it is {reason}. Nothing was changed.",
                                   hint="Use another copy of the backup.") from None
        if counter == 0 and check_header is not None:
            check_header(parsed)
        sink.write(plain)
        counter += 1
        if final:
            return parsed
        current = following


def _read_exact(source: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes, fewer only at the end (network bodies return short reads)."""
    first = source.read(size)
    if not first or len(first) == size:
        return first or b""
    parts, have = [first], len(first)
    while have < size:
        more = source.read(size - have)
        if not more:
            break
        parts.append(more)
        have += len(more)
    return b"".join(parts)
