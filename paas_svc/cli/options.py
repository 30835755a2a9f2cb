"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from paas_svc.cli.completion import complete_env, complete_project

ProjectOption = Annotated[Optional[str], typer.Option(
    "--project", "-p", envvar="PAAS_PROJECT", show_envvar=True, autocompletion=complete_project,
    help="Project to act on (default: the one chosen with `paas project use`, else `default`).")]
EnvOption = Annotated[Optional[str], typer.Option(
    "--env", "-e", envvar="PAAS_ENV", show_envvar=True, autocompletion=complete_env,
    help="Environment (default: the one environment holding the slug).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
