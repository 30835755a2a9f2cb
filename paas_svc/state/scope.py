"""Which project and environment a command acts on."""

from __future__ import annotations

from paas_svc.errors import Conflict, NotFound
from paas_svc.state.store import DEFAULT_PROJECT, StateStore

CURRENT_PROJECT_META = "current_project"
DEFAULT_ENV_FOR_NEW_SERVICES = "development"


def resolve_project(store: StateStore, option: str | None) -> str:
    """--project / PAAS_PROJECT, else the one chosen with `paas project use`, else `default`."""
    name = option or store.get_meta(CURRENT_PROJECT_META) or DEFAULT_PROJECT
    store.get_project(name)  # raises NotFound with the known projects
    return name


def resolve_env(store: StateStore, project: str, option: str | None, default: str = DEFAULT_ENV_FOR_NEW_SERVICES) -> str:
    name = option or default
    store.get_environment(project, name)
    return name


def resolve_env_for_slug(store: StateStore, project: str, option: str | None, slug: str) -> str:
    """--env when given; else the one environment holding that slug."""
    if option:
        store.get_environment(project, option)
        return option
    envs = store.environments_with_slug(project, slug)
    if len(envs) == 1:
        return envs[0]
    if not envs:
        raise NotFound(f"No service {slug!r} in any environment of project {project!r}.",
                       hint="List services with `paas svc list`.")
    raise Conflict(f"Service {slug!r} exists in several environments of {project!r}: {', '.join(envs)}.",
                   hint="Pick one with --env.")
