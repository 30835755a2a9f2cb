"""`paas backup ...`: schedules, the run-due the host's timer calls, the list of backups,
destinations and verified restores. Parse, call one use case of paas_svc.usecases.backups, render."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from paas_svc.cli import pitr_cmd
from paas_svc.cli.options import EnvOption, JsonOption, ProjectOption
from paas_svc.cli.output import StderrReporter, data, message, print_json, warn
from paas_svc.cli.render import print_table
from paas_svc.cli.state import find_service, open_profile, service_manager

app = typer.Typer(help="Scheduled, off-host, encrypted and verified backups.", no_args_is_help=True)
dest_app = typer.Typer(help="Where backups go: a folder (an NFS or other mount) or an S3-compatible store.", no_args_is_help=True)
app.add_typer(dest_app, name="dest")
app.add_typer(__import__("paas_svc.cli.notify_cmd", fromlist=["app"]).app, name="notify")  # backups that fail loudly
app.add_typer(pitr_cmd.app, name="pitr")

NowOption = Annotated[Optional[str], typer.Option(
    "--now", metavar="ISO", help="Act as if it were this UTC time (tests, catch-up); also PAAS_NOW.")]


def _backups(profile, reporter=None):
    from paas_svc.usecases.backups.manager import Backups
    from paas_svc.usecases.data import DataOps

    return Backups(DataOps(service_manager(profile, reporter or StderrReporter())))


def _sync_scheduler(profile, backups, environment=None) -> None:
    from paas_svc.usecases.backups.scheduler_install import sync
    from paas_svc.usecases.backups.timer import timer_users

    # TLS services (renewals) and archived PostgreSQL services (WAL shipping) need the timer too.
    entry = sync(profile.home, profile.store.profile_id(), timer_users(profile.store), environment)
    if entry is not None and entry.note:
        message(entry.note)


# -- schedules ----------------------------------------------------------------------------

@app.command("schedule", context_settings={"allow_interspersed_args": True})
def schedule(
    words: Annotated[list[str], typer.Argument(
        metavar="SLUG | list | rm SLUG",
        help="`SLUG --every ...` adds or replaces a schedule; `list` shows them; `rm SLUG` removes the service's schedules. "
             "(A service named list or rm: `schedule add SLUG ...`.)")],
    every: Annotated[Optional[str], typer.Option(
        "--every", help="daily (03:00 UTC), hourly, weekly, or five cron fields in UTC, e.g. '30 2 * * *'.")] = None,
    keep: Annotated[Optional[int], typer.Option("--keep", help="Keep the newest N backups of this schedule.")] = None,
    keep_daily: Annotated[Optional[int], typer.Option("--keep-daily", help="Keep the newest backup of each of the last D days.")] = None,
    keep_weekly: Annotated[Optional[int], typer.Option("--keep-weekly", help="Keep the newest backup of each of the last W weeks.")] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="A destination (`paas backup dest add`); default: PAAS_HOME/backups.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Verify every backup in a throwaway container after taking it.")] = False,
    store_keys: Annotated[bool, typer.Option(
        "--store-keys", help="Keep $PAAS_MASTER_KEY / $PAAS_BACKUP_KEY for the host's timer in PAAS_HOME/scheduler.env (0600), "
                             "beside the state: needed when a key comes from the environment.")] = False,
    project: ProjectOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    now: NowOption = None,
) -> None:
    """Back up a service on a schedule, run by the host's timer (systemd, else cron).

    The timer gets DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, the proxy variables and
    (with --store-keys) the key variables of this shell, kept in PAAS_HOME/scheduler.env."""
    from paas_svc.errors import InvalidInput

    action, rest = words[0], words[1:]
    if action == "list":
        if rest:
            raise InvalidInput("`backup schedule list` takes no argument.")
        return _schedule_list(json_output)
    if action == "rm":
        if len(rest) != 1:
            raise InvalidInput("Say which service: paas backup schedule rm SLUG [--to DEST].")
        return _schedule_rm(rest[0], project, env, to, json_output)
    if action == "add":
        if len(rest) != 1:
            raise InvalidInput("Say which service: paas backup schedule add SLUG --every daily.")
        action, rest = rest[0], []
    if rest:
        raise InvalidInput(f"Unexpected arguments: {' '.join(rest)}.", hint="paas backup schedule SLUG --every daily [--keep N] [--to DEST]")
    if every is None:
        raise InvalidInput("Say how often: --every daily|hourly|weekly|'CRON'.")
    _schedule_add(action, project, env, every, keep, keep_daily, keep_weekly, to, verify, store_keys, json_output, now)


def _schedule_add(slug, project, env, every, keep, keep_daily, keep_weekly, to, verify, store_keys, json_output, now) -> None:
    from paas_svc.cli.remote import logged_in
    from paas_svc.cli.render import result

    remote = logged_in()
    if remote is not None:  # on the server's timer, with the server's environment
        if store_keys:
            from paas_svc.errors import InvalidInput

            raise InvalidInput("--store-keys keeps this shell's keys for this host's timer; through the server, the "
                               "server's timer runs with the server's own keys.",
                               hint="Drop --store-keys (or run it on the server's host).")
        shown = remote.call("POST", f"/api/cli/services/{remote.quoted(slug)}/backup-schedules",
                            {"project": project, "env": env, "every": every, "keep": keep, "keep_daily": keep_daily,
                             "keep_weekly": keep_weekly, "to": to, "verify": verify, "now": now})
        return result(shown["line"], shown["payload"], json_output, shown["notes"])
    from paas_svc.usecases.backup_schedules import add_schedule
    from paas_svc.usecases.backups import clock

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    shown = add_schedule(_backups(profile), profile.vault, profile.home, service, every, keep, keep_daily, keep_weekly,
                         to, verify, store_keys, clock.now(now))
    result(shown.line, shown.payload, json_output, shown.notes)


def _where(service) -> str | None:
    return f"{service.project}/{service.env}/{service.slug}" if service is not None else None


def _schedule_list(json_output: bool) -> None:
    from paas_svc.cli.remote import logged_in
    from paas_svc.usecases.backups.retention import RetentionPolicy

    remote = logged_in()
    if remote is not None:
        rows = remote.get("/api/cli/backup-schedules")
    else:
        from paas_svc.usecases.backup_schedules import list_schedules

        rows = list_schedules(_backups(open_profile()))
    if json_output:
        print_json(rows)
        return
    print_table(["SERVICE", "EVERY", "KEEP", "TO", "VERIFY", "NEXT", "LAST OK", "LAST ERROR"],
                [(row["service"] or "(gone)", row["every"],
                  RetentionPolicy(row["keep_last"], row["keep_daily"], row["keep_weekly"]).describe(), row["destination"],
                  "yes" if row["verify"] else "no", row["next_due_at"], row["last_success_at"] or "-", row["last_error"] or "")
                 for row in rows], empty="No backup schedules.")


def _schedule_rm(slug, project, env, to, json_output) -> None:
    from paas_svc.cli.remote import logged_in
    from paas_svc.cli.render import result

    remote = logged_in()
    if remote is not None:
        shown = remote.call("DELETE", f"/api/cli/services/{remote.quoted(slug)}/backup-schedules",
                            {"project": project, "env": env, "to": to})
        return result(shown["line"], shown["payload"], json_output, shown["notes"])
    from paas_svc.usecases.backup_schedules import remove_schedules

    profile = open_profile()
    shown = remove_schedules(_backups(profile), profile.home, find_service(profile, project, env, slug), to)
    result(shown.line, shown.payload, json_output, shown.notes)


# -- run-due ------------------------------------------------------------------------------

@app.command("run-due")
def run_due(
    now: NowOption = None,
    json_output: JsonOption = False,
    env_file: Annotated[Optional[str], typer.Option(
        "--env-file", metavar="FILE", help="Take DOCKER_HOST, the keys, ... from the file `backup schedule` keeps for the "
                                           "host's timer (PAAS_HOME/scheduler.env); the timer's entry passes it.")] = None,
) -> None:
    """Take every backup that is due, apply retention, record each outcome (what the timer calls).

    Exit 0 when every due backup succeeded (or nothing was due), 6 when one failed: it is
    retried at the next run and shown as overdue by `backup list` and `doctor`."""
    from dataclasses import asdict

    from paas_svc.errors import ExitCode
    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.backups.runner import run_due as run

    if env_file is not None:
        from pathlib import Path

        from paas_svc.usecases.backups.scheduler_install import apply_env_file

        apply_env_file(Path(env_file))  # before the profile opens: the master key may come from it
    profile = open_profile()
    backups = _backups(profile)
    report = run(backups, clock.now(now))
    if not backups.records.schedule_count():
        _sync_scheduler(profile, backups)  # a purge removed the last scheduled service (TLS services keep the timer)
    if json_output:
        print_json({"ran": report.ran, "now": report.now, "backups": [asdict(item) for item in report.items],
                    "notifications": asdict(report.notifications) if report.notifications else None,
                    "tls_renewed": [asdict(renewal) for renewal in report.renewals],
                    "pitr": [asdict(item) for item in report.pitr]})
    elif not report.ran:
        message("Another `paas backup run-due` is running for this profile; nothing to do.")
    else:
        for item in report.items:
            where = f"{item.project}/{item.env}/{item.slug}"
            if item.ok:
                data(f"backed up {where} to {item.location} ({item.size_bytes} bytes)")
                for location in item.deleted:
                    message(f"  retention removed {location}")
                if item.verified is not None:
                    message(f"  verify {'passed' if item.verified else 'FAILED'}: {item.verify_detail}")
            if item.error:
                warn(f"{where} -> {item.destination}: {item.error}")
        for item in report.pitr:
            where = f"{item.project}/{item.env}/{item.slug}"
            if item.shipped or item.base:
                data(f"archived {where} to {item.destination}: {item.shipped} WAL file(s)"
                     + (f", base backup {item.base}" if item.base else ""))
            if item.error:
                warn(f"{where} -> {item.destination} (WAL archive): {item.error}")
        for renewal in report.renewals:
            if renewal.error:
                warn(f"{renewal.where}: its TLS certificate was not renewed: {renewal.error}")
            else:
                data(f"renewed the TLS certificate of {renewal.where} (valid until {renewal.not_after}; "
                     + ("reloaded, no restart)" if renewal.reloaded else "restarted)"))
        if not report.items and not report.pitr:
            message(f"No backup due at {report.now}.")
        sent = report.notifications
        if sent is not None and sent.failed:
            warn(f"{sent.failed} notification(s) not delivered, {sent.pending} waiting (retried with backoff): `paas backup notify list`")
    if report.failures:
        raise typer.Exit(ExitCode.PROVISIONING)


@app.command("now")
def backup_now(
    slug: Annotated[str, typer.Argument(help="The service's slug.")],
    to: Annotated[Optional[str], typer.Option("--to", help="A destination; default: PAAS_HOME/backups.")] = None,
    project: ProjectOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    now: NowOption = None,
) -> None:
    """Take one backup now into the backup store or a destination (encrypted when it leaves the host), and record it."""
    from paas_svc.cli.remote import logged_in

    remote = logged_in()
    if remote is not None:  # taken and recorded on the server
        record = remote.waiting_on_data().call("POST", f"/api/cli/services/{remote.quoted(slug)}/backups",
                             {"project": project, "env": env, "to": to, "now": now})
        if json_output:
            print_json(record)
            return
        # Its location is a path on the server's host: the id is what `svc restore` takes from here.
        data(f"Backed up {record['service']} as backup {record['id']}, on the server at {record['location']} "
             f"({record['size_bytes']} bytes{', encrypted' if record['encrypted'] else ''})")
        return
    from paas_svc.usecases.backups import clock

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    record = _backups(profile).take(service, to or "", clock.now(now))
    if json_output:
        print_json(_record_json(record))
        return
    data(f"Backed up {_where(service)} to {record.location} ({record.size_bytes} bytes{', encrypted' if record.encrypted else ''})")


# -- list ---------------------------------------------------------------------------------

def _record_json(record) -> dict:
    from paas_svc.usecases.listing import backup_record_json

    return backup_record_json(record)


@app.command("list")
def list_backups(
    slug: Annotated[Optional[str], typer.Argument(help="Only this service's backups.")] = None,
    project: ProjectOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    now: NowOption = None,
) -> None:
    """Every backup paas knows, local and remote, with whether it was verified; overdue schedules on top."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.usecases.data import human_size

    remote = logged_in()
    if remote is not None:  # the server's backups
        listing = remote.get("/api/cli/backups", slug=slug, project=project, env=env, now=now)
    else:
        from paas_svc.usecases.backups import clock
        from paas_svc.usecases.listing import backup_listing

        profile = open_profile()
        listing = backup_listing(_backups(profile), find_service(profile, project, env, slug) if slug else None, clock.now(now))
    if json_output:
        print_json(listing)
        return
    for late in listing["overdue"]:
        warn(f"OVERDUE {late['service']} -> {late['destination']}: {late['reason']}")
    for item in listing["notifications"]:  # the last message of each notifier and whether it got there
        from paas_svc.cli.notify_cmd import describe_state

        message(f"notify {item['notifier']}: {item['event']} {item['service'] or ''} at {item['created_at']}, {describe_state(item)}")
    for window in listing["pitr"]:
        message(f"point-in-time window of {window['service']} ({window['destination']}): {window['earliest'] or '-'} "
                f"to {window['latest'] or '-'}, lag {window['lag_seconds'] if window['lag_seconds'] is not None else '?'}s")
        for problem in window["problems"]:
            warn(f"WAL archive of {window['service']}: {problem}")
    verified = {None: "-", True: "yes", False: "FAILED"}
    rows = [(r["id"], r["service"], r["created_at"], human_size(r["size_bytes"]) if r["size_bytes"] is not None else "-",
             r["location"] or f"{r['destination']} (nothing stored)", verified[r["verified"]],
             r["status"] if r["status"] != "failed" else f"failed: {r['error']}") for r in listing["backups"]]
    rows += [("-", f["service"], f["created_at"], human_size(f["size_bytes"]), f["location"], "-", "ok (safety/final)")
             for f in listing["local_files"]]
    print_table(["ID", "SERVICE", "TIME", "SIZE", "WHERE", "VERIFIED", "STATUS"], rows, empty="No backups recorded yet.")


# -- verify -------------------------------------------------------------------------------

@app.command("verify")
def verify(
    slug: Annotated[str, typer.Argument(help="The service whose backup to verify (its template is used).")],
    backup: Annotated[Optional[str], typer.Argument(
        help="A backup id from `paas backup list`, a file, or an s3:// URL (default: the service's latest backup).")] = None,
    project: ProjectOption = None,
    env: EnvOption = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the throwaway copy to accept connections.")] = 120.0,
    allow_other_service: Annotated[bool, typer.Option(
        "--allow-other-service", help="Accept a backup of another service of the same kind (one to restore with this option).")] = False,
    to_time: Annotated[Optional[str], typer.Option(
        "--to-time", metavar="ISO|latest", help="PostgreSQL with `backup pitr`: recover the archive to this UTC time instead.")] = None,
    from_dest: Annotated[Optional[str], typer.Option(
        "--from", metavar="DEST", help="With --to-time: the destination holding the archive (default: the one archived to).")] = None,
    json_output: JsonOption = False,
    now: NowOption = None,
) -> None:
    """Restore a backup into a throwaway container and volume, check it, record the result, remove them.

    Exit 0 when the backup restores and passes its checks, 6 when it does not."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.errors import ExitCode, NotFound
    from paas_svc.usecases.backups import clock
    from paas_svc.usecases.backups.verify import verify_backup
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_timeout(timeout)
    remote = logged_in()
    if remote is not None:  # on the server, in a throwaway container there
        remote.timeout = max(remote.timeout, timeout + 600)
        checked = remote.waiting_on_data().call("POST", f"/api/cli/services/{remote.quoted(slug)}/verify",
                              {"project": project, "env": env, "backup": backup, "timeout": timeout,
                               "allow_other_service": allow_other_service, "now": now})
        if json_output:
            print_json(checked)
        elif checked["ok"]:
            data(f"Verified {checked['location']}: {checked['detail']} ({checked['elapsed_seconds']:.1f}s)")
        else:
            data(f"Verify FAILED for {checked['location']}: {checked['detail']}")
        if not checked["ok"]:
            raise typer.Exit(ExitCode.PROVISIONING)
        return
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    backups = _backups(profile)
    record, location, destination = None, None, None
    if to_time is not None:
        from paas_svc.usecases.backups.pitr import Pitr, parse_target

        result = Pitr(backups).verify_to_time(service, parse_target(to_time), from_dest, timeout=max(timeout, 600.0))
    elif backup is None:
        record = backups.latest(service)
        if record is None:
            raise NotFound(f"{_where(service)} has no recorded backup to verify.", hint="Pass a FILE, or take one with `paas backup now`.")
    elif backup.isdigit():
        record = backups.records.record(int(backup))
    else:
        from pathlib import Path

        from paas_svc.errors import InvalidInput

        if not backup.startswith("s3://") and not Path(backup).is_file():
            raise InvalidInput(f"{backup} is neither a backup id, a file, nor an s3:// URL.", hint="See `paas backup list`.")
        destination, location = backups.locate(service, backup, None, False)
    if to_time is None:
        result = verify_backup(backups, service, record, clock.now(now), location=location, destination=destination,
                               ready_timeout=timeout, allow_other_service=allow_other_service)
    if json_output:
        print_json({"ok": result.ok, "detail": result.detail, "location": result.location, "backup_id": result.record_id,
                    "elapsed_seconds": round(result.elapsed_seconds, 3)})
    elif result.ok:
        data(f"Verified {result.location}: {result.detail} ({result.elapsed_seconds:.1f}s)")
    else:
        data(f"Verify FAILED for {result.location}: {result.detail}")
    if not result.ok:
        raise typer.Exit(ExitCode.PROVISIONING)


# -- destinations -------------------------------------------------------------------------

def _read_s3_keys(keys_stdin: bool) -> tuple[str, str]:
    """From stdin (two lines: access key, secret key), the AWS_* variables, or prompts. Never argv."""
    from paas_svc.errors import InvalidInput

    if keys_stdin:
        lines = sys.stdin.read().splitlines()
        if len(lines) < 2:
            raise InvalidInput("--keys-stdin expects two lines: the access key, then the secret key.")
        return lines[0].strip(), lines[1].strip()
    access, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        return access, secret
    if not sys.stdin.isatty():
        raise InvalidInput("No S3 keys given.", hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pipe them with --keys-stdin.")
    return typer.prompt("Access key", err=True), typer.prompt("Secret key", hide_input=True, err=True)


@dest_app.command("add")
def dest_add(
    name: Annotated[str, typer.Argument(help="A name for the destination, e.g. offsite.")],
    path: Annotated[Optional[str], typer.Option("--path", help="A folder (an NFS or other mount).")] = None,
    s3: Annotated[Optional[str], typer.Option("--s3", metavar="s3://BUCKET/PREFIX", help="An S3 bucket and prefix.")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="The S3 endpoint URL (leave out for AWS).")] = None,
    region: Annotated[Optional[str], typer.Option("--region", help="The S3 region.")] = None,
    from_service: Annotated[Optional[str], typer.Option("--from-service", metavar="SLUG",
                                                        help="A paas MinIO service (with --env/--project) as the S3 store.")] = None,
    keys_stdin: Annotated[bool, typer.Option("--keys-stdin", help="Read the access key and secret key from stdin (two lines).")] = False,
    create_bucket: Annotated[bool, typer.Option("--create-bucket", help="Create the bucket when it does not exist.")] = False,
    project: ProjectOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a destination. S3 keys come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --keys-stdin or a
    prompt (never the command line) and are stored encrypted like service credentials."""
    from paas_svc.errors import InvalidInput
    from paas_svc.secrets.backup_key import key_path, read_key
    from paas_svc.usecases.backups import clock, records

    if (path is None) == (s3 is None):
        raise InvalidInput("Give exactly one of --path DIR or --s3 s3://BUCKET/PREFIX.")
    profile = open_profile()
    backups = _backups(profile)
    had_key = read_key(profile.home) is not None
    stamp = records.format_time(clock.now())
    if path is not None:
        backups.add_folder_destination(name, path, stamp)
    elif from_service is not None:
        service = find_service(profile, project, env, from_service)
        backups.add_service_destination(name, s3, service, stamp, create_bucket)
    else:
        access, secret = _read_s3_keys(keys_stdin)
        backups.add_s3_destination(name, s3, endpoint, region, access, secret, stamp, create_bucket)
    profile.store.audit("backup-dest-add", "-", "-", "-", f"name={name}")
    row = backups.records.destination(name)
    if json_output:
        print_json({"name": name, "kind": row.kind, "where": backups.describe_destination(row)})
    else:
        data(f"Added backup destination {name}: {backups.describe_destination(row)}")
    if not had_key:
        warn(f"backups sent to {name} are encrypted with a new backup key ({key_path(profile.home)}). Export it now and keep it "
             "apart from this machine: `paas key export --backup -o FILE`. Without it those backups cannot be read.")


@dest_app.command("list")
def dest_list(json_output: JsonOption = False) -> None:
    """The backup destinations (never their keys)."""
    profile = open_profile()
    backups = _backups(profile)
    rows = backups.records.destinations()
    if json_output:
        print_json([{"name": r.name, "kind": r.kind, "where": backups.describe_destination(r), "created_at": r.created_at} for r in rows])
        return
    print_table(["NAME", "KIND", "WHERE"], [(r.name, r.kind, backups.describe_destination(r)) for r in rows],
                empty="No backup destinations.")


@dest_app.command("rm")
def dest_rm(name: Annotated[str, typer.Argument(help="The destination's name.")], json_output: JsonOption = False) -> None:
    """Forget a destination (its backups stay where they are). Refused while a schedule uses it."""
    profile = open_profile()
    _backups(profile).records.remove_destination(name)
    profile.store.audit("backup-dest-rm", "-", "-", "-", f"name={name}")
    if json_output:
        print_json({"name": name, "removed": True})
        return
    data(f"Removed backup destination {name}; the backups stored there are untouched.")
