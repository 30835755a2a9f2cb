"""Shell completion: `paas completion bash|zsh|fish` prints the script; the shell then calls
`paas` with _PAAS_COMPLETE set, and these functions complete template keys, projects,
environments and slugs from the catalog and the state database.

Loaded by every command module for its options, so it imports nothing at module level; the
functions run only during completion, read the state without creating anything, and never fail
(a completion that raises would print a traceback into the user's prompt).
"""

from __future__ import annotations

COMPLETE_VAR = "_PAAS_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="paas", complete_var=COMPLETE_VAR, shell=shell)


def prepare() -> None:
    """Typer's completion classes (zsh and fish read _TYPER_COMPLETE_ARGS): registered only while completing."""
    from typer._completion_classes import completion_init

    completion_init()


def _store():
    from paas_svc.state.home import home_dir

    database = home_dir() / "state.db"
    if not database.exists():  # completing must not create a home
        return None
    from paas_svc.state.store import open_store

    return open_store(database.parent)


def _project(ctx, store) -> str:
    from paas_svc.state.scope import resolve_project

    return resolve_project(store, (ctx.params or {}).get("project") if ctx is not None else None)


def _safely(function, incomplete: str) -> list[str]:
    try:
        values = function()
    except Exception:  # noqa: BLE001 - a completion offers nothing rather than a traceback
        return []
    return sorted(value for value in set(values) if value.startswith(incomplete))


def complete_template(incomplete: str) -> list[str]:
    from paas_svc.catalog import load_catalog

    return _safely(lambda: list(load_catalog()), incomplete)


def complete_project(incomplete: str) -> list[str]:
    def names():
        store = _store()
        return [project.name for project in store.list_projects()] if store else []

    return _safely(names, incomplete)


def complete_env(ctx, incomplete: str) -> list[str]:
    def names():
        store = _store()
        return [env.name for env in store.list_environments(_project(ctx, store))] if store else []

    return _safely(names, incomplete)


def complete_slug(ctx, incomplete: str) -> list[str]:
    def slugs():
        store = _store()
        if store is None:
            return []
        env = (ctx.params or {}).get("env") if ctx is not None else None
        return [service.slug for service in store.list_services(project=_project(ctx, store), env=env)]

    return _safely(slugs, incomplete)
