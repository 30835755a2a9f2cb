"""`paas key rotate|export|import`: the master key that encrypts every service's credentials."""


import os
import stat
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import data, message, print_json, protect_stdout, warn, write_output_file
from paas_svc.cli.render import result
from paas_svc.cli.state import open_profile

app = typer.Typer(
    help="The master key that encrypts every service's credentials: rotate it, export it, import it on another machine.",
    no_args_is_help=True,
)

STDIN = "-"
MAX_KEY_INPUT = 64 * 1024  # a key is 45 bytes; never read an unbounded stream


@app.command("rotate")
def rotate(
    drop_old: Annotated[bool, typer.Option(
        "--drop-old",
        help="Do not rotate: delete the master.key.old-* backups left by earlier rotations and list them "
             "(refused while a stored secret still needs one).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Make a new master key and re-encrypt every stored credential with it in one transaction.

    The previous key is kept as master.key.old-<UTC time> (mode 0600) until
    `paas key rotate --drop-old`. Connection strings do not change.
    """
    from paas_svc.secrets.rotation import drop_old_keys, rotate_key

    profile = open_profile()
    if drop_old:
        removed = drop_old_keys(profile.vault)
        if json_output:
            print_json({"action": "drop-old", "deleted": [str(path) for path in removed]})
            return
        for path in removed:
            data(str(path))
        if removed:
            message(f"Deleted {len(removed)} old key backup{'s' if len(removed) != 1 else ''} from {profile.home}.")
        else:
            message(f"No old key backups in {profile.home}.")
        return
    rotated = rotate_key(profile.vault)
    payload = {"action": "rotate", "key_file": str(rotated.key_file), "created": rotated.created,
               "reencrypted": rotated.reencrypted, "backup": str(rotated.backup) if rotated.backup else None}
    if rotated.created:
        result(f"There was no master key yet: created {rotated.key_file}. No secrets to re-encrypt.", payload, json_output)
        return
    count = rotated.reencrypted
    notes = ([f"The previous key is kept in {rotated.backup} (mode 0600); delete it with `paas key rotate --drop-old` "
              "once you no longer need to open older copies of state.db."] if rotated.backup is not None else [])
    result(f"Rotated the master key in {rotated.key_file}: re-encrypted {count} secret{'s' if count != 1 else ''}.",
           payload, json_output, notes + ["Update any copy of the key you keep elsewhere: `paas key export -o FILE`."])


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
    from paas_svc.cli.paths import check_output_path
    from paas_svc.secrets.transfer import export_key

    # an unusable target is refused before the key is read
    target = None if output is None or output == STDIN else check_output_path(output)
    if backup:
        return _export_backup_key(target)
    profile = open_profile()
    exported = export_key(profile.vault)  # checked against the state first
    warn(f"this key (from {exported.source}) decrypts every credential in {profile.store.path}; keep it secret.")
    if target is None:
        protect_stdout("the master key")
        data(exported.key.decode())  # delivered first: a key that could not be written is not a recorded export
        profile.store.audit("key-export", "-", "-", "-", "to=stdout")
        return
    write_output_file(target, exported.key + b"\n", "the key")
    profile.store.audit("key-export", "-", "-", "-", f"to={target.absolute()}")
    result(f"Wrote the master key to {target} (mode 0600).", {}, False)


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(
        metavar="FILE", help="File holding the key, as written by `paas key export`; - reads it from stdin.")],
    force: Annotated[bool, typer.Option(
        "--force",
        help="Install the key even though it does not open the credentials already stored here "
             "(the current key is still kept as master.key.old-<UTC time>; nothing is deleted).")] = False,
    json_output: JsonOption = False,
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
        return _import_backup_key(raw, source, json_output)
    profile = open_profile()
    imported = import_key(profile.vault, raw, force=force, source=source)
    for kept in imported.backups:
        message(f"Kept the previous key in {kept} (mode 0600).")
    result(f"Installed the key from {source} in {imported.key_file} (mode 0600)." if imported.changed
           else f"{imported.key_file} already holds this key.",
           {"action": "import", "key_file": str(imported.key_file), "changed": imported.changed,
            "backups": [str(path) for path in imported.backups], "matches_state": imported.matches_state}, json_output)
    if imported.matches_state is False:
        warn(f"this key does not open the credentials stored in {profile.store.path}; "
             "put the matching state.db in place, or import the right key.")
    if os.environ.get(ENV_VAR):
        warn(f"${ENV_VAR} is set and wins over {imported.key_file}; unset it to use the imported key.")


def _read_key_input(file: str) -> tuple[bytes, str]:
    from paas_svc.errors import InvalidInput

    if file == STDIN:
        if sys.stdin is None:  # `<&-`
            raise InvalidInput("stdin is closed; there is no key to read.",
                               hint="Pipe the key in (`paas key import - < FILE`) or give the FILE.")
        stream = getattr(sys.stdin, "buffer", None)
        raw = stream.read(MAX_KEY_INPUT) if stream is not None else sys.stdin.read(MAX_KEY_INPUT).encode()
        return raw, "stdin"
    path = Path(file).expanduser()
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; only a regular file is read
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with open(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InvalidInput(f"The key file {path} is not a regular file.",
                                   hint="Give the file written by `paas key export -o FILE`, or - to read the key from stdin.")
            raw = handle.read(MAX_KEY_INPUT)
    except FileNotFoundError:
        raise InvalidInput(f"The key file {path} does not exist.",
                           hint="Give the file written by `paas key export -o FILE`, or - to read the key from stdin.") from None
    except OSError as error:
        raise InvalidInput(f"Cannot read the key file {path}: {error.strerror}.",
                           hint="Check the path and its permissions.") from None
    return raw, str(path)


def _export_backup_key(target: Path | None) -> None:
    from paas_svc.errors import NotFound
    from paas_svc.secrets.backup_cipher import key_id
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
        data(text)  # delivered first: a key that could not be written is not a recorded export
        profile.store.audit("key-export", "-", "-", "-", f"backup key={key_id(key)} to=stdout")
        return
    write_output_file(target, (text + "\n").encode(), "the backup key")
    profile.store.audit("key-export", "-", "-", "-", f"backup key={key_id(key)} to={target.absolute()}")
    result(f"Wrote the backup key {key_id(key)} to {target} (mode 0600).", {}, False)


def _import_backup_key(raw: bytes, source: str, json_output: bool) -> None:
    from paas_svc.secrets.backup_key import ENV_VAR as BACKUP_ENV_VAR
    from paas_svc.secrets.backup_key import import_key as import_backup_key

    profile = open_profile()
    imported = import_backup_key(profile.home, raw, source)
    profile.store.audit("key-import", "-", "-", "-", f"backup key={imported.key_id}")
    if imported.previous is not None:
        message(f"Kept the previous backup key in {imported.previous} (mode 0600): backups made with it still open.")
    result(f"Installed the backup key {imported.key_id} from {source}." if imported.changed
           else f"This profile already has the backup key {imported.key_id}.",
           {"action": "import", "backup_key": imported.key_id, "changed": imported.changed,
            "previous": str(imported.previous) if imported.previous else None}, json_output)
    if os.environ.get(BACKUP_ENV_VAR):
        warn(f"${BACKUP_ENV_VAR} is set and wins over the imported key; unset it to use the imported one.")
