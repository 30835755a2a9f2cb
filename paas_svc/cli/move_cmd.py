"""`paas svc move SLUG --node N`: registered on the `svc` group (imported by main)."""


from typing import Annotated, Optional

import typer

from paas_svc.cli.options import EnvOption, JsonOption, ProjectOption
from paas_svc.cli.output import StderrReporter, data, print_json, warn
from paas_svc.cli.state import open_profile, service_manager
from paas_svc.cli.svc_cmd import SlugArgument, app


@app.command("move")
def move(slug: SlugArgument,
         node: Annotated[str, typer.Option("--node", help="The Swarm node to move the service (and its data) to.")],
         project: ProjectOption = None, env: EnvOption = None,
         timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the service to accept connections.")] = 120.0,
         json_output: JsonOption = False) -> None:
    """Move a Swarm service to another node with its data: backup, re-create there, restore, check, drop the old volume."""
    from paas_svc.data_ops import DataOps
    from paas_svc.lifecycle import validate_timeout
    from paas_svc.move import move_service
    from paas_svc.scope import resolve_env_for_slug, resolve_project

    validate_timeout(timeout)
    profile = open_profile()
    project_name = resolve_project(profile.store, project)
    service = profile.store.get_service(project_name, resolve_env_for_slug(profile.store, project_name, env, slug), slug)
    result = move_service(DataOps(service_manager(profile, StderrReporter(), service.target)), service, node, timeout)
    if result.note:
        warn(result.note)
    if json_output:
        print_json({"slug": slug, "from": result.old_node, "to": result.new_node, "backup": str(result.backup),
                    "host": result.service.spec.get("publish_address"), "elapsed_seconds": round(result.elapsed_seconds, 3)})
        return
    data(f"{slug} moved from {result.old_node} to {result.new_node} with its data in {result.elapsed_seconds:.1f}s "
         f"(backup taken before: {result.backup})")
