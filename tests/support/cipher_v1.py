"""Encrypted backups as paas wrote them before the service binding (format 1), by a writer
independent of paas_svc.secrets.backup_cipher: the fixed header only, an HKDF-SHA256 file key,
AES-256-GCM chunks with the header as associated data. For the tests that old files still read."""

from __future__ import annotations

import os
import struct

MAGIC = b"PAASBKE\x00"
CHUNK_SIZE = 64 * 1024


def version1_file(plain: bytes, key: bytes, key_id_hex: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    salt, prefix = os.urandom(16), os.urandom(7)
    header = struct.pack(">8sBI8s16s7s", MAGIC, 1, CHUNK_SIZE, bytes.fromhex(key_id_hex), salt, prefix)
    aead = AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"paas-svc backup file v1").derive(key))
    chunks = [plain[i:i + CHUNK_SIZE] for i in range(0, len(plain), CHUNK_SIZE)]
    if not chunks or len(chunks[-1]) == CHUNK_SIZE:
        chunks.append(b"")  # the last chunk is short (possibly empty) and carries the final flag
    body = b"".join(aead.encrypt(prefix + struct.pack(">IB", n, int(n == len(chunks) - 1)), chunk, header)
                    for n, chunk in enumerate(chunks))
    return header + body
