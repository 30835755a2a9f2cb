"""`paas backup pitr enable|status|disable`: continuous WAL archiving of a PostgreSQL service
(point-in-time recovery). Parse, call one use case of paas_svc.usecases.backups.pitr, render."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from paas_svc.cli.options import EnvOption, JsonOption, ProjectOption
from paas_svc.cli.output import StderrReporter, data, message, print_fields, print_json, warn
from paas_svc.cli.state import find_service, open_profile, service_manager

app = typer.Typer(help="Point-in-time recovery of PostgreSQL: continuous WAL archiving and base backups to a destination.",
                  no_args_is_help=True)

SlugArgument = Annotated[str, typer.Argument(help="The PostgreSQL service's slug.")]
NowOption = Annotated[Optional[str], typer.Option(
    "--now", metavar="ISO", help="Act as if it were this UTC time (tests, catch-up); also PAAS_NOW.")]


def _pitr(profile):
    from paas_svc.usecases.backups.manager import Backups
    from paas_svc.usecases.backups.pitr import Pitr
    from paas_svc.usecases.data import DataOps

    return Pitr(Backups(DataOps(service_manager(profile, StderrReporter()))))


def _sync_scheduler(profile, pitr) -> None:
    from paas_svc.usecases.backups.scheduler_install import sync
    from paas_svc.usecases.backups.timer import timer_users

    entry = sync(profile.home, profile.store.profile_id(), timer_users(profile.store), None)
    if entry is not None and entry.note:
        message(entry.note)


def _render_status(status, json_output: bool) -> None:
    if json_output:
        print_json(status.as_json())
        return
    document = status.as_json()
    spool = document["spool"]
    print_fields([
        ("service", document["service"]),
        ("destination", document["destination"]),
        ("window", f"{document['window']} (base backup {document['base_every']}, next {document['next_base_due']})"),
        ("earliest", document["earliest"] or "-"),
        ("latest", document["latest"] or "-"),
        ("lag", "-" if document["lag_seconds"] is None else f"{document['lag_seconds']}s"),
        ("archive", f"{document['base_backups']} base backup(s), {document['segments']} WAL file(s)"),
        ("spool", "-" if spool is None else f"{spool['segments']} file(s), {spool['bytes']} bytes of {spool['limit_bytes']}"),
        ("last shipped", document["last_ship_at"] or "-"),
    ])
    for problem in status.problems:
        warn(problem)


@app.command("enable")
def enable(
    slug: SlugArgument,
    to: Annotated[str, typer.Option("--to", help="The destination (`paas backup dest add`): a folder or S3.")],
    window: Annotated[str, typer.Option("--window", help="How far back a restore can go: 7d, 36h, ...")] = "7d",
    base_every: Annotated[str, typer.Option(
        "--base-every", help="Base backups: daily (03:00 UTC), hourly, weekly, or five cron fields in UTC.")] = "daily",
    project: ProjectOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    now: NowOption = None,
) -> None:
    """Archive a PostgreSQL service's WAL continuously (encrypted, to DEST) and take a base backup now.

    Turns on archive_mode (a restart of the server when it was off), archive_command (into a
    bounded spool on the volume) and archive_timeout=60s; `backup run-due` (the host timer,
    every minute) ships the spool and takes the base backups on their schedule."""
    from paas_svc.usecases.backups import clock

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    pitr = _pitr(profile)
    status = pitr.enable(service, to, window, base_every, clock.now(now))
    _sync_scheduler(profile, pitr)
    if not json_output:
        message(f"Archiving {slug}'s WAL to {to}; restorable from {status.as_json()['earliest']}.")
    _render_status(status, json_output)


@app.command("status")
def status(
    slug: SlugArgument,
    project: ProjectOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    now: NowOption = None,
) -> None:
    """The restorable window (earliest, latest, UTC), the archive lag in seconds, and any stall."""
    from paas_svc.usecases.backups import clock

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    _render_status(_pitr(profile).status(service, clock.now(now)), json_output)


@app.command("disable")
def disable(
    slug: SlugArgument,
    project: ProjectOption = None,
    env: EnvOption = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the archive (base backups and WAL) at the destination.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="With --purge: do not ask for confirmation.")] = False,
    from_dest: Annotated[Optional[str], typer.Option(
        "--from", metavar="DEST", help="With --purge once archiving is off: the destination whose archive of it to delete.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Stop archiving (a restart of the server). The archive at the destination is kept unless --purge."""
    from paas_svc.errors import InvalidInput

    if from_dest is not None and not purge:
        raise InvalidInput("--from names the archive that --purge deletes.", hint="Add --purge, or leave --from out.")
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    pitr = _pitr(profile)
    destination, archiving = pitr.purge_destination(service, from_dest) if purge else (None, True)
    if purge and not yes:
        from paas_svc.cli.render import confirm

        where = f"{service.project}/{service.env}/{service.slug}"
        confirm(f"Delete every base backup and WAL segment of {where} at {destination}? "
                "No point-in-time restore of it will be possible.",
                f"--purge deletes the point-in-time archive of {where}.",
                f"paas backup pitr disable {slug} --env {service.env} --purge{' --from ' + from_dest if from_dest else ''} --yes")
    if not archiving:  # already off: the archive a plain disable kept, at --from
        deleted = pitr.purge_archive(service, destination)
        if json_output:
            print_json({"service": f"{service.project}/{service.env}/{service.slug}", "disabled": True, "restarted": False,
                        "purged": deleted})
            return
        data(f"Deleted the point-in-time archive of {service.project}/{service.env}/{service.slug} at {destination} "
             f"({deleted} file{'' if deleted == 1 else 's'}).")
        return
    restarted, deleted = pitr.disable(service, purge)
    _sync_scheduler(profile, pitr)
    if json_output:
        print_json({"service": f"{service.project}/{service.env}/{service.slug}", "disabled": True, "restarted": restarted,
                    "purged": deleted if purge else None})
        return
    if purge:
        data(f"Archiving of {service.project}/{service.env}/{service.slug} is off; "
             f"its archive at the destination is deleted ({deleted} file{'' if deleted == 1 else 's'}).")
        return
    data(f"Archiving of {service.project}/{service.env}/{service.slug} is off; its archive at the destination is kept.")
