"""Options shared by several commands: one spelling and one meaning per flag.

SHORT_FLAGS is the contract the README's short-flags table shows and
tests/unit/test_command_tree.py enforces: a short flag means the same thing in every command.
"""

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
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document (shapes: README \"JSON output\").")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
TimeoutOption = Annotated[float, typer.Option(
    "--timeout", help="Seconds to wait for the service to accept connections.")]
DEFAULT_TIMEOUT = 120.0

# short flag -> (long option(s) it abbreviates, meaning). One meaning per short flag.
SHORT_FLAGS: dict[str, tuple[tuple[str, ...], str]] = {
    "-p": (("--project",), "the project to act on"),
    "-e": (("--env",), "the environment to act on"),
    "-t": (("--template",), "the catalog template"),
    "-y": (("--yes",), "do not ask for confirmation"),
    "-o": (("--output",), "where to write the output: a file (or - for stdout)"),
    "-f": (("--follow",), "keep printing new lines"),
    "-n": (("--tail", "--limit"), "only the last N lines or entries"),
}
