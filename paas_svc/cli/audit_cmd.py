"""`paas audit`."""


from typing import Annotated, Optional

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import print_json, print_table
from paas_svc.cli.state import open_profile


def audit(json_output: JsonOption = False,
          limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Only the last N entries.")] = None) -> None:
    """Show the audit log: every add, removal and reveal of a connection string."""
    entries = open_profile().store.list_audit(limit)
    if json_output:
        print_json([entry._asdict() for entry in entries])
    else:
        print_table(("AT", "USER", "ACTION", "PROJECT", "ENV", "SLUG", "DETAIL"),
                    [(e.at, e.os_user, e.action, e.project, e.env, e.slug, e.detail) for e in entries],
                    empty="The audit log is empty.")
