"""`paas svc move SLUG --node N`: registered on the `svc` group (imported by main)."""


from typing import Annotated

import typer

from paas_svc.cli.options import DEFAULT_TIMEOUT, EnvOption, JsonOption, ProjectOption, TimeoutOption
from paas_svc.cli.output import StderrReporter, warn
from paas_svc.cli.render import result
from paas_svc.cli.state import find_service, open_profile, service_manager
from paas_svc.cli.svc_cmd import SlugArgument, app


@app.command("move")
def move(slug: SlugArgument,
         node: Annotated[str, typer.Option("--node", help="The Swarm node to move the service (and its data) to.")],
         project: ProjectOption = None, env: EnvOption = None,
         timeout: TimeoutOption = DEFAULT_TIMEOUT,
         json_output: JsonOption = False) -> None:
    """Move a Swarm service to another node with its data: backup, re-create there, restore, check, drop the old volume."""
    from paas_svc.usecases.data import DataOps
    from paas_svc.usecases.lifecycle import validate_timeout
    from paas_svc.usecases.move import move_service

    validate_timeout(timeout)
    profile = open_profile()
    service = find_service(profile, project, env, slug)
    moved = move_service(DataOps(service_manager(profile, StderrReporter(), service.target)), service, node, timeout)
    if moved.note:
        warn(moved.note)
    result(f"{slug} moved from {moved.old_node} to {moved.new_node} with its data in {moved.elapsed_seconds:.1f}s "
           f"(backup taken before: {moved.backup})",
           {"action": "move", "project": service.project, "env": service.env, "slug": slug, "from": moved.old_node,
            "to": moved.new_node, "backup": str(moved.backup), "host": moved.service.spec.get("publish_address"),
            "elapsed_seconds": round(moved.elapsed_seconds, 3)}, json_output)
