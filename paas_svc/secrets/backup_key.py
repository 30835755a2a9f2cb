"""The backup key: 32 random bytes that encrypt every backup leaving the host, kept apart from
the master key (PAAS_HOME/backup.key, 0600, or $PAAS_BACKUP_KEY). Export it once and a
lost master key or home folder no longer costs the off-host backups. Keys replaced by an import
stay as backup.key.old-<UTC time>, so older backups still open."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from paas_svc.errors import SecretsError

KEY_FILE = "backup.key"
OLD_PREFIX = "backup.key.old-"
ENV_VAR = "PAAS_BACKUP_KEY"
TEXT_PREFIX = "paas-backup-key-1:"
KEY_BYTES = 32


def key_path(home: Path) -> Path:
    return home / KEY_FILE


def encode_key(key: bytes) -> str:
    return TEXT_PREFIX + base64.urlsafe_b64encode(key).decode()


def decode_key(text: str | bytes, source: str) -> bytes:
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    text = text.strip()
    if text.startswith(TEXT_PREFIX):
        try:
            key = base64.urlsafe_b64decode(text[len(TEXT_PREFIX):].encode())
        except (binascii.Error, ValueError):
            key = b""
        if len(key) == KEY_BYTES:
            return key
    raise SecretsError(f"{source} does not hold a paas backup key (a line starting with {TEXT_PREFIX}).",
                       hint="Give the file written by `paas key export --backup`.")


def read_key(home: Path) -> bytes | None:
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return decode_key(from_env, f"${ENV_VAR}")
    try:
        return decode_key(key_path(home).read_bytes(), str(key_path(home)))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SecretsError(f"Cannot read the backup key {key_path(home)}: {error.strerror}.") from None


def ensure_key(home: Path) -> bytes:
    """The backup key, made (0600) on first use."""
    existing = read_key(home)
    if existing is not None:
        return existing
    key = os.urandom(KEY_BYTES)
    try:
        fd = os.open(key_path(home), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key(home)  # another process made it first
    with os.fdopen(fd, "w") as handle:
        handle.write(encode_key(key) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


def known_keys(home: Path) -> dict[str, bytes]:
    """Every backup key this profile has (current and replaced), by key id."""
    from paas_svc.secrets.backup_cipher import key_id

    keys: dict[str, bytes] = {}
    for path in sorted(home.glob(OLD_PREFIX + "*")):
        try:
            key = decode_key(path.read_bytes(), str(path))
        except (SecretsError, OSError):
            continue
        keys[key_id(key)] = key
    current = read_key(home)
    if current is not None:
        keys[key_id(current)] = current
    return keys


@dataclass
class ImportResult:
    key_id: str
    changed: bool
    previous: Path | None


def import_key(home: Path, raw: bytes, source: str) -> ImportResult:
    from paas_svc.secrets.backup_cipher import key_id
    from paas_svc.state.home import write_private_file
    from paas_svc.state.store import utc_stamp

    key = decode_key(raw, source)
    path = key_path(home)
    current = None
    try:
        current = decode_key(path.read_bytes(), str(path))
    except FileNotFoundError:
        pass
    if current == key:
        return ImportResult(key_id(key), False, None)
    previous = None
    if current is not None:
        previous = home / f"{OLD_PREFIX}{utc_stamp()}"
        write_private_file(previous, (encode_key(current) + "\n").encode())
    write_private_file(path, (encode_key(key) + "\n").encode())
    return ImportResult(key_id(key), True, previous)
