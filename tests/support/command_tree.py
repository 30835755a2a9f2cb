"""The whole command tree, and which commands keep which convention (tests/unit/test_command_tree.py
checks the lists against the tree and the README; other tests walk the tree)."""

from __future__ import annotations

# Commands whose stdout IS the data in a fixed format (a DSN, variables, logs, a key, a shell
# script, the command's or client's own output) or that serve until stopped: --json would add
# nothing. Every other command reports a result.
RAW_OUTPUT = {"svc dsn", "svc env", "svc logs", "svc connect", "env export", "run", "key export", "completion",
              "serve", "tunnel"}
# Commands that wait for a service to accept connections.
WAITING = {"svc add", "svc start", "svc restart", "svc repair", "svc restore", "svc clone", "svc upgrade", "doctor",
           "svc wait", "svc update", "svc rotate-password", "svc move"}
# Commands without subcommands.
SINGLE = {"run", "audit", "doctor", "serve", "tunnel", "completion", "login", "logout", "whoami"}


def _tree() -> dict[str, object]:
    """{"svc add": click command, ...} for every leaf command."""
    import typer.main

    from paas_svc.cli.main import build_app

    leaves: dict[str, object] = {}

    def walk(command, path):
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, path + (name,))
        else:
            leaves[" ".join(path)] = command

    walk(typer.main.get_command(build_app()), ())
    return leaves


TREE = _tree()
