"""`paas audit`."""


from typing import Annotated, Optional

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import print_json
from paas_svc.cli.render import print_table
from paas_svc.cli.state import open_profile

MAX_LIMIT = 2**63 - 1  # SQLite's largest LIMIT; above it is invalid input, not a crash


def audit(json_output: JsonOption = False,
          limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, max=MAX_LIMIT, help="Only the last N entries.")] = None,
          project: Annotated[Optional[str], typer.Option("--project", "-p", help="Only entries of this project (default: all).")] = None,
          env: Annotated[Optional[str], typer.Option("--env", "-e", help="Only entries of this environment (default: all).")] = None) -> None:
    """Show the audit log: every add, removal and reveal, the person (USER: the token's name through
    the server, the OS user locally) and the way in (VIA: local, cli-server, dashboard, api)."""
    from paas_svc.cli.remote import logged_in

    remote = logged_in()
    if remote is not None:  # the server's audit (admin)
        rows = remote.get("/api/cli/audit", limit=limit, project=project, env=env)
    else:
        from paas_svc.usecases.listing import audit_rows

        rows = audit_rows(open_profile().store, limit, project, env)
    if json_output:
        print_json(rows)
    else:
        # COUNT: how many requests a row stands for (refusals of the API within a minute coalesce).
        print_table(("AT", "USER", "ACTION", "VIA", "COUNT", "PROJECT", "ENV", "SLUG", "DETAIL"),
                    [(e["at"], e["actor"], e["action"], e["via"], e["count"], e["project"], e["env"], e["slug"], e["detail"])
                     for e in rows],
                    empty="The audit log is empty.")
