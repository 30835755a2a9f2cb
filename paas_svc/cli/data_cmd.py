"""`paas svc backup|restore|clone|upgrade`: registered on the `svc` group (imported by main)."""


import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from paas_svc.cli.options import DEFAULT_TIMEOUT, EnvOption, JsonOption, ProjectOption, TimeoutOption, YesOption
from paas_svc.cli.output import StderrReporter, data, message, print_json
from paas_svc.cli.render import confirm
from paas_svc.cli.state import find_service, open_profile, service_manager
from paas_svc.cli.svc_cmd import SlugArgument, app


class ByteProgress:
    """A transfer bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self) -> None:
        self._interactive = sys.stderr.isatty()
        self._progress = None
        self._task = None

    def start(self, description: str, total: int | None) -> None:
        if not self._interactive:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn("  {task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                  TimeElapsedColumn(), console=Console(stderr=True, highlight=False), transient=True)
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, count: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, count)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _data_ops(profile, service):
    from paas_svc.usecases.data import DataOps

    return DataOps(service_manager(profile, StderrReporter(), service.target), ByteProgress())


def _output_path(output: str | None, service, extension: str) -> Path:
    """The backup file: the default name in the current folder, in the folder -o names (a
    trailing / asks for a folder, created 0700 when missing), or the file -o names."""
    from paas_svc.cli.paths import check_output_path
    from paas_svc.usecases.data import default_backup_name, unique_path

    if output is None:
        return unique_path(Path.cwd() / default_backup_name(service, extension))
    path = check_output_path(output, folder_ok=True)
    if path.is_dir():
        return unique_path(path / default_backup_name(service, extension))
    return path


@app.command("backup")
def backup(
    slug: SlugArgument,
    project: ProjectOption = None,
    env: EnvOption = None,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", help="File to write, or a folder for the default name, or - for stdout "
                               "(default: ./<project>-<env>-<slug>-<UTC time>.<ext>).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Back up a service's data with its engine's native tool (pg_dump, BGSAVE, mongodump...).

    The file (mode 0600) is one JSON header line, then the native data: `tail -n +2 FILE`
    gives the data back for the engine's own tools."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.errors import InvalidInput
    from paas_svc.kinds import strategy_for
    from paas_svc.usecases.data import human_size

    remote = logged_in()
    if remote is not None:  # made on the server, downloaded here
        return _remote_backup(remote, slug, project, env, output, json_output)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    if output != "-":  # checked (and a folder/ made) before the engine is asked for anything
        path = _output_path(output, service, strategy_for(service).extension)
    data_ops = _data_ops(profile, service)
    where = f"{service.project}/{service.env}/{service.slug}"
    if output == "-":
        stream = getattr(sys.stdout, "buffer", None)
        if stream is None:
            raise InvalidInput("This stdout cannot take binary data; pass -o FILE.")
        result = data_ops.backup_to_stream(service, stream)
        message(f"Backed up {where} ({service.template}) to stdout: {human_size(result.size)} in {result.elapsed_seconds:.1f}s")
        return
    result = data_ops.backup_to_path(service, path)
    header = result.header
    if json_output:
        print_json({"action": "backup", "file": str(result.path), "bytes": header.payload_bytes, "sha256": header.payload_sha256,
                    "elapsed_seconds": round(result.elapsed_seconds, 3), "template": header.template, "image": header.image,
                    "tool_version": header.tool_version, "created_at": header.created_at})
        return
    data(f"Backed up {where} ({service.template}) to {result.path}: {human_size(result.size)} in {result.elapsed_seconds:.1f}s")
    message(f"Restore it with: paas svc restore {service.slug} {result.path} --env {service.env}")


def _remote_backup(remote, slug: str, project: str | None, env: str | None, output: str | None, json_output: bool) -> None:
    """`svc backup` logged in: the server makes the file; it is written here as locally (0600),
    with the same result line or JSON (read from the file's header)."""
    import time

    from paas_svc.cli.paths import check_output_path
    from paas_svc.errors import InvalidInput
    from paas_svc.kinds.strategy import parse_header
    from paas_svc.state.home import atomic_private_file
    from paas_svc.usecases.data import human_size, unique_path

    started = time.monotonic()
    target = None if output in (None, "-") else check_output_path(output, folder_ok=True)  # before the server works
    stdout = getattr(sys.stdout, "buffer", None) if output == "-" else None
    if output == "-" and stdout is None:
        raise InvalidInput("This stdout cannot take binary data; pass -o FILE.")
    name, response, connection = remote.download_backup(slug, project, env)
    first = bytearray()
    written = 0

    def copy(out) -> None:
        nonlocal written
        while chunk := response.read1(1024 * 1024):
            if b"\n" not in first:
                first.extend(chunk[:4096])
            out.write(chunk)
            written += len(chunk)
        line = bytes(first).partition(b"\n")[0]
        if not first or written != len(line) + 1 + parse_header(line, "the server's backup").payload_bytes:
            from paas_svc.errors import ProvisioningFailed

            raise ProvisioningFailed(f"The backup from {remote.url} ended early ({written} bytes); nothing was kept.",
                                     hint="Try again.")

    try:
        if stdout is not None:
            copy(stdout)
            stdout.flush()
            path = None
        else:
            path = unique_path(Path.cwd() / name) if target is None else (
                unique_path(target / name) if target.is_dir() else target)
            with atomic_private_file(path) as handle:
                copy(handle)
    finally:
        connection.close()
    header = parse_header(bytes(first).partition(b"\n")[0], "the server's backup")
    elapsed = time.monotonic() - started
    where = f"{header.project}/{header.env}/{header.slug}"
    if path is None:
        message(f"Backed up {where} ({header.template}) to stdout: {human_size(header.payload_bytes)} in {elapsed:.1f}s")
        return
    if json_output:
        print_json({"action": "backup", "file": str(path), "bytes": header.payload_bytes, "sha256": header.payload_sha256,
                    "elapsed_seconds": round(elapsed, 3), "template": header.template, "image": header.image,
                    "tool_version": header.tool_version, "created_at": header.created_at})
        return
    data(f"Backed up {where} ({header.template}) to {path}: {human_size(header.payload_bytes)} in {elapsed:.1f}s")
    message(f"Restore it with: paas svc restore {header.slug} {path} --env {header.env}")


@app.command("restore")
def restore(
    slug: SlugArgument,
    file: Annotated[Optional[str], typer.Argument(
        help="A file written by `paas svc backup`, an encrypted copy, or an s3://BUCKET/KEY of a backup destination.",
        show_default=False)] = None,
    from_dest: Annotated[Optional[str], typer.Option(
        "--from", metavar="DEST", help="Restore from this backup destination (with --latest, or a FILE/URL in it).")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="The newest backup of the service (at --from DEST, else anywhere).")] = False,
    allow_other_service: Annotated[bool, typer.Option(
        "--allow-other-service", help="Accept a backup of another service (same kind): a clone or a migration into a new name.")] = False,
    to_time: Annotated[Optional[str], typer.Option(
        "--to-time", metavar="ISO|latest", help="PostgreSQL with `backup pitr`: recover to this UTC time (or the latest "
                                                "archived transaction) from the WAL archive (at --from DEST).")] = None,
    project: ProjectOption = None,
    env: EnvOption = None,
    yes: YesOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """Replace a service's data with a backup, after a safety backup of the current data.

    The file is checked first (kind, size, checksum): a bad file changes nothing. A backup in
    a destination is fetched (and decrypted) into a private scratch folder first, then checked
    the same way."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.usecases.backups.manager import Backups
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_timeout(timeout)
    remote = logged_in()
    if remote is not None:  # restored on the server: a file here is uploaded, an id or s3:// URL is the server's
        return _remote_restore(remote, slug, file, from_dest, latest, allow_other_service, project, env, yes, timeout,
                               json_output)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    data_ops = _data_ops(profile, service)
    if to_time is not None:
        return _restore_to_time(data_ops, service, to_time, file, from_dest, latest, yes, timeout, json_output)
    backups = Backups(data_ops)  # a plain file too: its record (if any) is checked, and a destination's must be encrypted
    destination, source = backups.locate(service, file, from_dest, latest)
    path = backups.fetch(service, destination, source, allow_other_service=allow_other_service)
    again = " ".join(["paas svc restore", service.slug, *([file] if file else []), *(["--from", from_dest] if from_dest else []),
                      *(["--latest"] if latest else []), *(["--allow-other-service"] if allow_other_service else []),
                      "--env", service.env, "--yes"])
    try:
        _restore_checked(data_ops, service, source, path, yes, timeout, json_output, again, allow_other_service)
    finally:
        if path.parent == data_ops.scratch_dir:  # a fetched copy: plaintext, remove it now
            path.unlink(missing_ok=True)


def _remote_restore(remote, slug: str, file: str | None, from_dest: str | None, latest: bool, allow_other_service: bool,
                    project: str | None, env: str | None, yes: bool, timeout: float, json_output: bool) -> None:
    """`svc restore` logged in. FILE (a file on this machine) is uploaded, streamed; a backup id
    (digits that name no file here), an s3:// URL, --from or --latest name the server's own backup.
    Confirmed here, before anything is sent; checked and restored on the server as locally."""
    import math

    from paas_svc.cli.render import result
    from paas_svc.kinds.strategy import MAX_HEADER_BYTES, parse_header
    from paas_svc.secrets.backup_cipher import MAGIC

    service = remote.show_service(slug, project, env)  # the server's defaults; a missing service fails before the upload
    where = f"{service['project']}/{service['env']}/{service['slug']}"
    scope = {"project": service["project"], "env": service["env"], "allow_other_service": allow_other_service,
             "timeout": timeout if math.isfinite(timeout) else None}
    remote.timeout = max(remote.timeout, timeout + 600) if math.isfinite(timeout) else None
    again = " ".join(["paas svc restore", service["slug"], *([file] if file else []), *(["--from", from_dest] if from_dest else []),
                      *(["--latest"] if latest else []), *(["--allow-other-service"] if allow_other_service else []),
                      "--env", service["env"], "--yes"])
    upload = file is not None and not file.startswith("s3://") and from_dest is None and (
        os.path.lexists(file) or not file.isdigit())
    if not upload:
        what = f"backup {file}" if file and file.isdigit() else (file or f"the latest backup{f' at {from_dest}' if from_dest else ''}")
        if not yes:
            confirm(f"Replace ALL data of {where} with {what} on {remote.url}? A safety backup is taken first.",
                    f"Refusing to replace the data of {where} without confirmation.", again)
        shown = remote.restore_held(service["slug"], scope, file, from_dest, latest)
        return result(shown["line"], shown["payload"], json_output, shown["notes"])
    with _open_backup_file(file) as handle:
        size = os.fstat(handle.fileno()).st_size
        first = handle.read(MAX_HEADER_BYTES)
        handle.seek(0)
        if first.startswith(MAGIC):
            made = "an encrypted backup"
        else:  # a file that is no backup at all is refused here, before the upload (the server checks everything)
            header = parse_header(first.partition(b"\n")[0], file)
            made = f"backup of {header.project}/{header.env}/{header.slug} made {header.created_at}"
        if not yes:
            confirm(f"Replace ALL data of {where} on {remote.url} with {file} ({made})? A safety backup is taken first.",
                    f"Refusing to replace the data of {where} without confirmation.", again)
        shown = remote.restore_upload(service["slug"], scope, handle, size, file)
    result(shown["line"], shown["payload"], json_output, shown["notes"])


def _open_backup_file(file: str):
    """The file to upload, open; refused as a local restore refuses it (exit 2) when it cannot be."""
    import stat

    from paas_svc.kinds.strategy import InvalidBackup

    try:
        handle = open(file, "rb")
    except FileNotFoundError:
        raise InvalidBackup(f"No backup file at {file}.") from None
    except IsADirectoryError:
        raise InvalidBackup(f"{file} is a directory, not a backup file.") from None
    except OSError as error:
        raise InvalidBackup(f"Cannot read {file}: {error.strerror}.") from None
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise InvalidBackup(f"{file} is not a regular file. Nothing was changed.")
    return handle


def _restore_checked(data_ops, service, source: str, path: Path, yes: bool, timeout: float, json_output: bool, again: str,
                     allow_other_service: bool) -> None:
    from paas_svc.usecases.backups.manager import check_origin

    checked = data_ops.check_backup(service, path)
    check_origin(service, checked.header, source, allow_other_service)
    header = checked.header
    where = f"{service.project}/{service.env}/{service.slug}"
    if not yes:
        confirm(f"Replace ALL data of {where} with {source} (backup of {header.project}/{header.env}/{header.slug} "
                f"made {header.created_at})? A safety backup is taken first.",
                f"Refusing to replace the data of {where} without confirmation.", again)
    result = data_ops.restore(service, path, checked=checked, ready_timeout=timeout)
    from paas_svc.cli.render import result as render
    from paas_svc.usecases.actions import restored

    shown = restored(service, source, header, result)
    render(shown.line, shown.payload, json_output, shown.notes)


def _restore_to_time(data_ops, service, to_time: str, file, from_dest, latest: bool, yes: bool, timeout: float,
                     json_output: bool) -> None:
    from paas_svc.errors import InvalidInput
    from paas_svc.usecases.backups.manager import Backups
    from paas_svc.usecases.backups.pitr import Pitr, parse_target

    if file or latest:
        raise InvalidInput("--to-time restores from the WAL archive: give no FILE and no --latest.",
                           hint="E.g. paas svc restore SLUG --to-time 2026-12-06T10:15:00Z (or --to-time latest).")
    target = parse_target(to_time)
    where = f"{service.project}/{service.env}/{service.slug}"
    if not yes:
        again = " ".join(["paas svc restore", service.slug, "--to-time", to_time, *(["--from", from_dest] if from_dest else []),
                          "--env", service.env, "--yes"])
        confirm(f"Replace ALL data of {where} with its state at {to_time}? A safety backup is taken first.",
                f"Refusing to replace the data of {where} without confirmation.", again)
    result = Pitr(Backups(data_ops)).restore_to_time(service, target, from_dest, timeout=max(timeout, 600.0))
    if json_output:
        print_json({"action": "restore", "to_time": result.target, "base_backup": result.base, "wal_files": result.segments,
                    "safety_backup": result.safety_backup, "elapsed_seconds": round(result.elapsed_seconds, 3),
                    "detail": result.detail})
        return
    data(f"Restored {where} to {result.target} ({result.detail}) in {result.elapsed_seconds:.1f}s")
    if result.safety_backup:
        message(f"The data it had before is saved in {result.safety_backup}")


@app.command("clone")
def clone(
    slug: SlugArgument,
    to_env: Annotated[Optional[str], typer.Option("--to-env", help="Environment of the copy (default: the same one).")] = None,
    to_slug: Annotated[Optional[str], typer.Option("--to-slug", help="Slug of the copy (default: the same slug).")] = None,
    project: ProjectOption = None,
    env: EnvOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """Copy a service's data into a new service with its own credentials and volume.

    E.g. production into staging for debugging: --to-env staging."""
    from paas_svc.errors import InvalidInput
    from paas_svc.usecases.data import human_size
    from paas_svc.usecases.listing import service_json

    if to_env is None and to_slug is None:
        raise InvalidInput("Say where the copy goes: --to-env ENV and/or --to-slug SLUG.")
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    result = _data_ops(profile, service).clone(service, to_env or service.env, to_slug, timeout=timeout)
    copy = result.service
    if json_output:
        print_json({**service_json(copy, "Ready"), "action": "clone", "cloned_from": {"env": service.env, "slug": service.slug},
                    "bytes": result.payload_bytes, "elapsed_seconds": round(result.elapsed_seconds, 3)})
        return
    data(f"Cloned {service.project}/{service.env}/{service.slug} into {copy.project}/{copy.env}/{copy.slug}: "
         f"{human_size(result.payload_bytes)} in {result.elapsed_seconds:.1f}s; it has its own credentials and volume {copy.volume_name}")
    message(f"Apps get {copy.env_var}; reveal it with: paas svc dsn {copy.slug} --env {copy.env}")


@app.command("upgrade")
def upgrade(
    slug: SlugArgument,
    image: Annotated[str, typer.Option("--image", help="The new image, e.g. redis:7.4-alpine.", show_default=False)],
    project: ProjectOption = None,
    env: EnvOption = None,
    yes: YesOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """Run a service on another image with the same volume; rolls back if it is not ready.

    A backup is taken first. A PostgreSQL major-version change is refused (it needs a dump
    and restore into a new service; the message gives the steps)."""
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_timeout(timeout)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    where = f"{service.project}/{service.env}/{service.slug}"
    if not yes:
        confirm(f"Upgrade {where} from {service.image} to {image}? A backup is taken first; the service restarts.",
                f"Refusing to upgrade {where} without confirmation.",
                f"paas svc upgrade {service.slug} --image {image} --env {service.env} --yes")
    result = _data_ops(profile, service).upgrade(service, image, timeout=timeout)
    if json_output:
        print_json({"action": "upgrade", "project": service.project, "slug": service.slug, "env": service.env, "old_image": result.old_image, "new_image": result.new_image,
                    "backup": str(result.backup), "elapsed_seconds": round(result.elapsed_seconds, 3)})
        return
    data(f"Upgraded {where}: {result.old_image} -> {result.new_image}, Ready in {result.elapsed_seconds:.1f}s")
    message(f"Backup taken before the upgrade: {result.backup}")


MAX_URL_INPUT = 8192


def _read_source_url() -> str:
    """The source URL: the first line of stdin, or typed without echo on a terminal."""
    from paas_svc.errors import InvalidInput

    if sys.stdin is None:  # `<&-`
        raise InvalidInput("stdin is closed; there is no source URL to read.")
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("Source URL (not shown): ", stream=sys.stderr)
    return sys.stdin.readline(MAX_URL_INPUT)


@app.command("import", context_settings={"allow_extra_args": True})
def import_(
    context: typer.Context,
    slug: SlugArgument,
    url_stdin: Annotated[bool, typer.Option(
        "--url-stdin", help="Read the source URL (postgres://, mysql://, redis://, mongodb://) from stdin: it holds a password.")] = False,
    project: ProjectOption = None,
    env: EnvOption = None,
    yes: YesOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    json_output: JsonOption = False,
) -> None:
    """Copy a database paas does not manage into a service, after a safety backup of the service.

    The URL comes on stdin, never the command line: `printf '%s\\n' "$URL" | paas svc import db
    --url-stdin --yes`. The kind's own dump tool (pg_dump, mariadb-dump, redis-cli --rdb,
    mongodump) runs in the service's container and only reads the source, which must be
    reachable from there."""
    from paas_svc.errors import InvalidInput
    from paas_svc.usecases.data import human_size
    from paas_svc.usecases.importing import Importer
    from paas_svc.usecases.lifecycle import validate_timeout

    if context.args or "://" in slug or "@" in slug:  # never echoed (click would): a URL there holds the password
        raise InvalidInput("The source URL is read from stdin, not the command line (where `ps` and the shell's history would show its password).",
                           hint="printf '%s\\n' \"$SOURCE_URL\" | paas svc import SLUG --url-stdin")
    if not url_stdin:
        raise InvalidInput("Give the source URL on stdin with --url-stdin.",
                           hint=f"printf '%s\\n' \"$SOURCE_URL\" | paas svc import {slug} --url-stdin")
    validate_timeout(timeout)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    where = f"{service.project}/{service.env}/{service.slug}"

    def ask(source) -> None:
        if not yes:
            confirm(f"Copy {source.shown()} into {where}, replacing its tables, collections or keys of the same names "
                    "(a Redis service: all its keys)? A safety backup is taken first; the source is only read.",
                    f"Refusing to replace the data of {where} without confirmation.",
                    f"printf '%s\\n' \"$SOURCE_URL\" | paas svc import {service.slug} --url-stdin --env {service.env} --yes")

    result = Importer(_data_ops(profile, service)).run(service, _read_source_url(), confirm=ask, ready_timeout=timeout)
    if json_output:
        print_json({"action": "import", "project": service.project, "env": service.env, "slug": service.slug,
                    "source": result.source, "safety_backup": str(result.safety_backup), "bytes": result.payload_bytes,
                    "elapsed_seconds": round(result.elapsed_seconds, 3)})
        return
    data(f"Imported {result.source} into {where}: {human_size(result.payload_bytes)} in {result.elapsed_seconds:.1f}s")
    message(f"The data it had before is saved in {result.safety_backup}")
