"""`paas backup notify ...`: who hears about failing backups (a webhook or a command). Parse,
call one use case of paas_svc.usecases.backups.notify, render."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import data, print_json
from paas_svc.cli.render import print_table
from paas_svc.cli.state import open_profile

app = typer.Typer(help="Messages on a failed backup, a failed verify, an overdue schedule, stalled archiving, and recovery.",
                  no_args_is_help=True)


def _notifier_json(found) -> dict:
    return {"name": found.name, "kind": found.kind, "target": found.shown, "created_at": found.created_at}


def _read_webhook_stdin() -> str:
    from paas_svc.errors import InvalidInput

    if sys.stdin.isatty():
        raise InvalidInput("`--webhook -` reads the URL from stdin, which is a terminal.",
                           hint="Pipe it: `printf %s \"$URL\" | paas backup notify add NAME --webhook -`.")
    lines = sys.stdin.read().strip().splitlines()
    if len(lines) != 1:
        raise InvalidInput("`--webhook -` expects one line on stdin: the URL.")
    return lines[0]


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the notifier, e.g. ops.")],
    webhook: Annotated[Optional[str], typer.Option(
        "--webhook", metavar="URL",
        help="POST each message as JSON to this http(s) URL (stored encrypted, shown masked). "
             "`-` reads the URL from stdin: a token in it then stays out of ps and the shell history.")] = None,
    command: Annotated[Optional[str], typer.Option(
        "--command", metavar="CMD", help="Run this program (no shell; words split as a shell would) with each message on stdin.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Add a notifier: every backup alert and recovery is sent to it as one JSON message."""
    from paas_svc.usecases.backups import notify

    from_argv = webhook not in (None, "-")
    if webhook == "-":
        webhook = _read_webhook_stdin()
    profile = open_profile()
    found = notify.add_notifier(profile.store, profile.vault, name, webhook, command)
    if from_argv and found.shown != webhook:
        from paas_svc.cli.output import warn

        warn("the webhook URL was on the command line (ps, shell history); `--webhook -` reads it from stdin instead.")
    if json_output:
        print_json(_notifier_json(found))
        return
    data(f"Added notifier {found.name}: {found.kind} {found.shown}. Try it with `paas backup notify test {found.name}`.")


@app.command("list")
def list_notifiers(json_output: JsonOption = False) -> None:
    """The notifiers (webhook URLs masked), the last message of each and its delivery state."""
    from paas_svc.usecases.backups import notify

    profile = open_profile()
    found = notify.notifiers(profile.store)
    last = {n.notifier: n for n in notify.last_notifications(profile.store)}
    if json_output:
        print_json([{**_notifier_json(n), "last": last[n.name].as_json() if n.name in last else None} for n in found])
        return
    print_table(["NAME", "KIND", "TARGET", "LAST MESSAGE", "STATE"],
                [(n.name, n.kind, n.shown, f"{last[n.name].event} {last[n.name].created_at}" if n.name in last else "-",
                  describe_state(last[n.name].as_json()) if n.name in last else "-") for n in found],
                empty="No notifiers. Add one with `paas backup notify add NAME --webhook URL`.")


def describe_state(item: dict) -> str:
    """A notification's delivery state in words, from its JSON form (local or the server's)."""
    if item["state"] == "delivered":
        return f"delivered {item['delivered_at']}"
    if item["state"] == "pending":
        tried = f", {item['attempts']} attempt(s), next {item['next_attempt_at']}: {item['last_error']}" if item["attempts"] else ""
        return f"pending{tried}"
    return f"FAILED after {item['attempts']} attempt(s): {item['last_error']}"


@app.command("rm")
def rm(name: Annotated[str, typer.Argument(help="The notifier's name.")], json_output: JsonOption = False) -> None:
    """Forget a notifier and the messages still queued for it."""
    from paas_svc.usecases.backups import notify

    profile = open_profile()
    dropped = notify.remove_notifier(profile.store, name)
    if json_output:
        print_json({"name": name, "removed": True, "dropped_pending": dropped})
        return
    data(f"Removed notifier {name}" + (f"; {dropped} queued message(s) dropped." if dropped else "."))


@app.command("test")
def test(name: Annotated[str, typer.Argument(help="The notifier's name.")], json_output: JsonOption = False) -> None:
    """Send a test message now (once, within 5 s) and say whether it was taken. Exit 6 when not."""
    from paas_svc.errors import ExitCode
    from paas_svc.usecases.backups import notify

    profile = open_profile()
    item, elapsed = notify.test_notifier(profile.store, name, vault=profile.vault)
    if json_output:
        print_json({**item.as_json(), "elapsed_seconds": round(elapsed, 3)})
    elif item.state == "delivered":
        data(f"Delivered a test message to {name} ({elapsed:.2f}s).")
    else:
        data(f"The test message to {name} was NOT delivered: {item.last_error}")
    if item.state != "delivered":
        raise typer.Exit(ExitCode.PROVISIONING)
