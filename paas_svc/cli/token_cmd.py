"""`paas token create|list|revoke`: bearer tokens for `paas serve`."""


from typing import Annotated, Optional

import typer

from paas_svc.cli.options import JsonOption
from paas_svc.cli.output import data, message, print_json
from paas_svc.cli.render import print_table
from paas_svc.cli.state import open_profile

app = typer.Typer(help="API tokens for `paas serve`, one per person: admin, member or viewer, optionally limited to projects.",
                  no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="A name for the token, e.g. ci-preview or alice.")]


def _token_json(token) -> dict:
    scope = token.project_scope
    return {"name": token.name, "role": token.role, "projects": list(scope) if scope else None, "state": token.state(),
            "created_at": token.created_at, "expires_at": token.expires_at, "revoked_at": token.revoked_at}


@app.command("create")
def create(
    name: NameArgument,
    role: Annotated[str, typer.Option("--role", help="admin (also reveals DSNs, variables and backups), member (also adds, "
                                                     "starts, stops, removes) or viewer (lists and reads status only).")],
    project: Annotated[Optional[list[str]], typer.Option("--project", "-p", help="Limit the token to this project (repeat for more; default: every project).")] = None,
    expires: Annotated[Optional[int], typer.Option("--expires", help="Days until the token stops working (default: never).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Make a token for a person and print it ONCE (only its hash is stored)."""
    from paas_svc.state.tokens import create_token

    token, secret = create_token(open_profile().store, name, role, expires, project or None)
    if json_output:
        print_json({**_token_json(token), "token": secret})
        return
    data(secret)
    scope = f", projects {', '.join(token.project_scope)}" if token.project_scope else ""
    message(f"Token {token.name!r} ({token.role}{scope}, expires {token.expires_at or 'never'}). "
            "It is shown only now: keep it in a secret store.")


@app.command("list")
def list_command(json_output: JsonOption = False) -> None:
    """List tokens: name, role, state (active, expired, revoked), dates. Never the token."""
    from paas_svc.state.tokens import list_tokens

    tokens = list_tokens(open_profile().store)
    if json_output:
        print_json([_token_json(token) for token in tokens])
        return
    print_table(("NAME", "ROLE", "PROJECTS", "STATE", "CREATED", "EXPIRES", "REVOKED"),
                [(t.name, t.role, t.projects or "all", t.state(), t.created_at, t.expires_at or "never", t.revoked_at or "")
                 for t in tokens],
                empty="No tokens yet. Make one with `paas token create NAME --role admin`.")


@app.command("revoke")
def revoke(name: NameArgument, json_output: JsonOption = False) -> None:
    """Revoke a token: the API refuses it from now on (401)."""
    from paas_svc.cli.render import result
    from paas_svc.state.tokens import revoke_token

    token = revoke_token(open_profile().store, name)
    result(f"Token {token.name!r} revoked at {token.revoked_at}.", {**_token_json(token), "action": "revoke"}, json_output)
