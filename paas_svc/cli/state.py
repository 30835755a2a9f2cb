"""Opening the profile (home folder, state database, key) for a command."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from paas_svc.secrets.vault import Vault
from paas_svc.state.home import ensure_home, home_dir
from paas_svc.state.store import StateStore, open_store


class Profile(NamedTuple):
    home: Path
    store: StateStore
    vault: Vault


_open_profiles: list[Profile] = []


def open_profile() -> Profile:
    home = ensure_home(home_dir())
    store = open_store(home)
    profile = Profile(home, store, Vault(store, home))
    _open_profiles.append(profile)
    return profile


def close_profiles() -> None:
    """Report what the vaults repaired on the way, and close every database connection a
    command opened (main.run calls it at the end)."""
    from paas_svc.cli.output import message

    while _open_profiles:
        profile = _open_profiles.pop()
        for finished in profile.vault.finished_rotations:
            message(f"note: finished an interrupted key rotation: {finished.pending.name} is now {finished.key_file}.")
        profile.store.close()


def find_service(profile: Profile, project_option: str | None, env_option: str | None, slug: str):
    """The service SLUG of the command's project and environment (--project/--env, else the
    current project and the environment that holds SLUG); NotFound when there is none."""
    from paas_svc.state.scope import resolve_env_for_slug, resolve_project

    project = resolve_project(profile.store, project_option)
    env = resolve_env_for_slug(profile.store, project, env_option, slug)
    return profile.store.get_service(project, env, slug)


def service_manager(profile: Profile, reporter=None, target: str = "local"):
    """The manager of one target's services (`local` unless the service or environment says
    otherwise); it reaches the other targets through `for_target`."""
    from paas_svc.usecases.lifecycle import target_managers

    return target_managers(profile.store, profile.vault, profile.home, reporter)(target)
