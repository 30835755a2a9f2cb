"""`paas login URL --token-stdin`, `paas logout`, `paas whoami`: the CLI as a client of a team's server."""


import sys
from typing import Annotated

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import print_fields, print_json


def login(url: Annotated[str, typer.Argument(help="The team's server, e.g. https://paas.example.com or http://127.0.0.1:8437.")],
          token_stdin: Annotated[bool, typer.Option("--token-stdin", help="Read the token from stdin (never from an argument: argv is public).")] = False,
          json_output: JsonOption = False) -> None:
    """Use a team's `paas serve` from here on: the commands ask it instead of the local state."""
    from paas_svc.cli.remote import Remote, check_url, save_login
    from paas_svc.errors import InvalidInput

    url = check_url(url)
    if not token_stdin:
        raise InvalidInput("Pass the token on stdin: --token-stdin.",
                           hint=f"For example: printenv PAAS_TOKEN | paas login {url} --token-stdin")
    token = sys.stdin.readline().strip()
    if not token or any(ch.isspace() for ch in token) or not token.isascii():
        raise InvalidInput("No token on stdin (one line, the token from `paas token create`).")
    me = Remote(url, token).whoami()  # the server must accept it before it is kept
    path = save_login(url, token)
    from paas_svc.cli.render import result

    result(f"Logged in to {url} as {me['name']} ({me['role']}{_scope_text(me)}); the token is in {path}.",
           {"action": "login", "url": url, **me}, json_output,
           ["Commands now go through the server; `paas logout` makes them local again."])


def logout(json_output: JsonOption = False) -> None:
    """Forget the server and its token: commands are local again."""
    from paas_svc.cli.remote import forget_login, logged_in
    from paas_svc.cli.render import result

    remote = logged_in()
    removed = forget_login()
    url = remote.url if remote else None
    result(f"Logged out of {url}; commands are local again." if removed else "Not logged in; commands are local.",
           {"action": "logout", "url": url, "was_logged_in": removed}, json_output)


def whoami(json_output: JsonOption = False) -> None:
    """Who the commands run as: the token's person, role and projects on the server, or the local user."""
    from paas_svc.cli.remote import logged_in
    from paas_svc.state.store import os_user

    remote = logged_in()
    if remote is None:
        shown = {"name": os_user(), "role": "local", "via": "local", "url": None}
    else:
        shown = {**remote.whoami(), "via": "cli-server", "url": remote.url}
    if json_output:
        print_json(shown)
        return
    print_fields([(key, "all" if key == "projects" and value is None else
                   ", ".join(value) if isinstance(value, list) else value) for key, value in shown.items()])


def _scope_text(me: dict) -> str:
    return f", projects {', '.join(me['projects'])}" if me.get("projects") else ""
