"""`paas completion bash|zsh|fish`: print the shell's completion script."""

from typing import Annotated

import typer

from paas_svc.cli.completion import SHELLS, completion_script
from paas_svc.cli.output import data


def _complete_shell(incomplete: str) -> list[str]:
    return [shell for shell in SHELLS if shell.startswith(incomplete)]


def completion(shell: Annotated[str, typer.Argument(help="bash, zsh or fish.", autocompletion=_complete_shell)]) -> None:
    """Print the completion script of a shell (commands, template keys, environments, slugs).

    bash: `paas completion bash > ~/.local/share/bash-completion/completions/paas`;
    zsh: `paas completion zsh > "${fpath[1]}/_paas"`; fish: `paas completion fish > ~/.config/fish/completions/paas.fish`.
    """
    from paas_svc.errors import InvalidInput

    if shell not in SHELLS:
        raise InvalidInput(f"No completion for the shell {shell!r}.", hint=f"Choose one of: {', '.join(SHELLS)}.")
    data(completion_script(shell))
