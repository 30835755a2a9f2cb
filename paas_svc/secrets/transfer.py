"""`paas key export` and `paas key import`: moving a profile's master key between machines."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from paas_svc.errors import InvalidInput, SecretsError
from paas_svc.secrets.keyfile import (
    key_lock,
    key_path,
    key_source,
    pending_key_path,
    read_existing,
    read_key,
    write_key_backup,
)
from paas_svc.state.home import fsync_dir, write_private_file


@dataclass
class ExportedKey:
    key: bytes  # without its newline
    source: str  # where it came from: the key file or $PAAS_MASTER_KEY


@dataclass
class ImportResult:
    key_file: Path
    backups: list[Path] = field(default_factory=list)  # key files moved aside before installing the new one
    changed: bool = True  # False when the same key was already installed
    matches_state: bool | None = True  # None: the state holds no secrets to check against


def export_key(vault) -> ExportedKey:
    """The master key in use (from the file, or PAAS_MASTER_KEY when set). It must open the
    state (an interrupted rotation is finished first)."""
    store, home = vault.store, vault.home
    with key_lock(home):
        if store.key_check() is not None or store.secret_count():
            vault.forget_cached_key()
            vault.box()
        key = read_key(home)
    if key is None:
        raise SecretsError(f"There is no master key to export: {key_path(home)} does not exist.",
                           hint="A key is made when the first service is added.")
    return ExportedKey(key, key_source(home))


def parse_key(raw: bytes, source: str) -> bytes:
    """The Fernet key in `raw` (one line, surrounding whitespace ignored); never echoes the content."""
    from paas_svc.secrets.box import is_valid_key

    key = raw.strip()
    if not key or not is_valid_key(key):
        raise InvalidInput(f"{source} does not hold a master key (expected one line: 32 url-safe base64 bytes, "
                           "as written by `paas key export`).",
                           hint="Import the file written by `paas key export` on the other machine.")
    return key


def import_key(vault, key_bytes: bytes, force: bool = False, source: str = "the imported key") -> ImportResult:
    """Install `key_bytes` as this profile's key file.

    Refused (SecretsError, nothing touched) when the state holds secrets the key does not open,
    unless `force`. Any different key file already there is kept as master.key.old-<stamp>.
    """
    key = parse_key(key_bytes, source)
    with key_lock(vault.home):
        result = _import_locked(vault.store, vault.home, key, force, source)
    vault.forget_cached_key()
    return result


def _import_locked(store, home: Path, key: bytes, force: bool, source: str) -> ImportResult:
    from paas_svc.secrets.box import SecretBox

    path = key_path(home)
    pending = pending_key_path(home)
    with store.write(durable=True) as db:
        key_check = store.key_check()
        secrets = store.all_secrets()
        if key_check is not None:
            matches: bool | None = SecretBox([key]).opens(key_check)
        elif secrets:
            matches = SecretBox([key]).opens_token(secrets[0][1])
        else:
            matches = None
        if matches is False and not force:
            raise SecretsError(
                f"The key in {source} does not open the credentials stored in {store.path}; {path} was left untouched.",
                hint="Import the key exported from the profile this state.db comes from. "
                     "--force installs it anyway (the current key is kept as a backup).",
            )
        existing = read_existing(path)
        backups: list[Path] = []
        if existing is not None and existing.strip() != key:
            backups.append(write_key_backup(home, existing)[0])
        pending_content = read_existing(pending)
        if pending_content is not None and pending_content.strip() != key:
            backups.append(write_key_backup(home, pending_content)[0])  # an interrupted rotation's key: kept, out of the way
        changed = existing is None or existing.strip() != key
        if changed:
            write_private_file(path, key + b"\n")
        else:
            os.chmod(path, 0o600)
        if pending_content is not None:
            pending.unlink()
        fsync_dir(home)
        detail = "matches-state" if matches else ("forced-mismatch" if matches is False else "no-secrets")
        store.audit_many(db, "key-import", [("-", "-", "-", f"{detail} backups={len(backups)}")])
    return ImportResult(path, backups, changed, matches)
