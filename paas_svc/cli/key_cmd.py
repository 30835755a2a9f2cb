"""`paas key rotate|export|import`: the master key that encrypts every service's credentials."""


import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from paas_svc.cli.output import data, message, protect_stdout, warn, write_output_file
from paas_svc.cli.state import open_profile

app = typer.Typer(
    help="The master key that encrypts every service's credentials: rotate it, export it, import it on another machine.",
    no_args_is_help=True,
)

STDIN = "-"


@app.command("rotate")
def rotate(
    drop_old: Annotated[bool, typer.Option(
        "--drop-old",
        help="Do not rotate: delete the master.key.old-* backups left by earlier rotations and list them "
             "(refused while a stored secret still needs one).")] = False,
) -> None:
    """Make a new master key and re-encrypt every stored credential with it in one transaction.

    The previous key is kept as master.key.old-<UTC time> (mode 0600) until
    `paas key rotate --drop-old`. Connection strings do not change.
    """
    from paas_svc.secrets.rotation import drop_old_keys, rotate_key

    profile = open_profile()
    if drop_old:
        removed = drop_old_keys(profile.vault)
        for path in removed:
            data(str(path))
        if removed:
            message(f"Deleted {len(removed)} old key backup{'s' if len(removed) != 1 else ''} from {profile.home}.")
        else:
            message(f"No old key backups in {profile.home}.")
        return
    result = rotate_key(profile.vault)
    if result.created:
        message(f"There was no master key yet: created {result.key_file}. No secrets to re-encrypt.")
        return
    count = result.reencrypted
    message(f"Rotated the master key in {result.key_file}: re-encrypted {count} secret{'s' if count != 1 else ''}.")
    if result.backup is not None:
        message(f"The previous key is kept in {result.backup} (mode 0600); delete it with `paas key rotate --drop-old` "
                "once you no longer need to open older copies of state.db.")
    message("Update any copy of the key you keep elsewhere: `paas key export -o FILE`.")


@app.command("export")
def export(
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write the key to FILE (created with mode 0600, replaced atomically) instead of stdout.")] = None,
    backup: Annotated[bool, typer.Option(
        "--backup", help="Export the backup key (encrypts backups sent to destinations) instead of the master key.")] = False,
) -> None:
    """Print the master key (one line) to move this profile to another machine. Audited.

    Anyone holding the key and a copy of state.db can decrypt every credential: store it like a password.
    With --backup: the backup key, which alone opens the encrypted off-host backups (keep it apart
    from this machine: it is what restores them if the machine and its master key are lost).
    """
    from paas_svc.home import check_replaceable
    from paas_svc.secrets.transfer import export_key

    target = None if output is None or output == STDIN else Path(output).expanduser()
    if target is not None:
        check_replaceable(target)  # before the key is revealed
    if backup:
        return _export_backup_key(target)
    profile = open_profile()
    exported = export_key(profile.vault)  # checked against the state first
    warn(f"this key (from {exported.source}) decrypts every credential in {profile.store.path}; keep it secret.")
    if target is None:
        protect_stdout("the master key")
        profile.store.audit("key-export", "-", "-", "-", "to=stdout")
        data(exported.key.decode())
        return
    write_output_file(target, exported.key + b"\n", "the key")
    profile.store.audit("key-export", "-", "-", "-", f"to={target.absolute()}")
    message(f"Wrote the master key to {target} (mode 0600).")


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(
        metavar="FILE", help="File holding the key, as written by `paas key export`; - reads it from stdin.")],
    force: Annotated[bool, typer.Option(
        "--force",
        help="Install the key even though it does not open the credentials already stored here "
             "(the current key is still kept as master.key.old-<UTC time>; nothing is deleted).")] = False,
    backup: Annotated[bool, typer.Option(
        "--backup", help="Import a backup key (from `paas key export --backup`); the current one is kept to open older backups.")] = False,
) -> None:
    """Install a master key exported from another machine (with that machine's state.db).

    Refused when this profile already holds secrets the key cannot open. A different key
    file already in place is kept as master.key.old-<UTC time> (mode 0600).
    """
    from paas_svc.secrets.keyfile import ENV_VAR
    from paas_svc.secrets.transfer import import_key

    raw, source = _read_key_input(file)
    if backup:
        return _import_backup_key(raw, source)
    profile = open_profile()
    result = import_key(profile.vault, raw, force=force, source=source)
    for backup in result.backups:
        message(f"Kept the previous key in {backup} (mode 0600).")
    if not result.changed:
        message(f"{result.key_file} already holds this key.")
    else:
        message(f"Installed the key from {source} in {result.key_file} (mode 0600).")
    if result.matches_state is False:
        warn(f"this key does not open the credentials stored in {profile.store.path}; "
             "put the matching state.db in place, or import the right key.")
    if os.environ.get(ENV_VAR):
        warn(f"${ENV_VAR} is set and wins over {result.key_file}; unset it to use the imported key.")


def _read_key_input(file: str) -> tuple[bytes, str]:
    from paas_svc.errors import InvalidInput

    if file == STDIN:
        stream = getattr(sys.stdin, "buffer", None)
        raw = stream.read() if stream is not None else sys.stdin.read().encode()
        return raw, "stdin"
    path = Path(file).expanduser()
    try:
        with open(path, "rb") as handle:
            raw = handle.read(64 * 1024)
    except FileNotFoundError:
        raise InvalidInput(f"The key file {path} does not exist.",
                           hint="Give the file written by `paas key export -o FILE`, or - to read the key from stdin.") from None
    except OSError as error:
        raise InvalidInput(f"Cannot read the key file {path}: {error.strerror}.",
                           hint="Check the path and its permissions.") from None
    return raw, str(path)


def _export_backup_key(target: Path | None) -> None:
    from paas_svc.backups.crypto import key_id
    from paas_svc.errors import NotFound
    from paas_svc.secrets.backup_key import encode_key, key_path, read_key

    profile = open_profile()
    key = read_key(profile.home)
    if key is None:
        raise NotFound(f"This profile has no backup key yet ({key_path(profile.home)}).",
                       hint="It is made with the first backup destination (`paas backup dest add`).")
    warn(f"this key ({key_id(key)}) decrypts every backup paas sent off this host; keep it apart from this machine.")
    text = encode_key(key)
    if target is None:
        protect_stdout("the backup key")
        profile.store.audit("key-export", "-", "-", "-", f"backup key={key_id(key)} to=stdout")
        data(text)
        return
    write_output_file(target, (text + "\n").encode(), "the backup key")
    profile.store.audit("key-export", "-", "-", "-", f"backup key={key_id(key)} to={target.absolute()}")
    message(f"Wrote the backup key {key_id(key)} to {target} (mode 0600).")


def _import_backup_key(raw: bytes, source: str) -> None:
    from paas_svc.secrets.backup_key import ENV_VAR as BACKUP_ENV_VAR
    from paas_svc.secrets.backup_key import import_key as import_backup_key

    profile = open_profile()
    result = import_backup_key(profile.home, raw, source)
    profile.store.audit("key-import", "-", "-", "-", f"backup key={result.key_id}")
    if result.previous is not None:
        message(f"Kept the previous backup key in {result.previous} (mode 0600): backups made with it still open.")
    message(f"Installed the backup key {result.key_id} from {source}." if result.changed
            else f"This profile already has the backup key {result.key_id}.")
    if os.environ.get(BACKUP_ENV_VAR):
        warn(f"${BACKUP_ENV_VAR} is set and wins over the imported key; unset it to use the imported one.")
