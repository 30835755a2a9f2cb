"""`paas tunnel SLUG`: an ssh local forward to a service on a 127.0.0.1-only remote target."""


from typing import Annotated, Optional

import typer

from paas_svc.cli.options import EnvOption, ProjectOption
from paas_svc.cli.output import data, message
from paas_svc.cli.state import find_service, open_profile


def tunnel(slug: Annotated[str, typer.Argument(help="The service's slug.")], project: ProjectOption = None, env: EnvOption = None,
           local_port: Annotated[Optional[int], typer.Option("--local-port", help="Port on this machine's 127.0.0.1 (default: a free one).")] = None) -> None:
    """Forward 127.0.0.1:PORT here to a service on an ssh:// target; prints the DSN through it, runs until Ctrl-C. Audited."""
    from paas_svc.usecases.tunnel import open_tunnel

    profile = open_profile()
    service = find_service(profile, project, env, slug)
    opened = open_tunnel(profile.store, profile.vault, profile.home, service, local_port)
    data(opened.dsn)
    message(f"Forwarding 127.0.0.1:{opened.local_port} to {slug} on {service.target}; Ctrl-C to close.")
    try:
        opened.process.wait()
    finally:
        opened.close()
