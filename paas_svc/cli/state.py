"""Opening the profile (home folder, state database, key) for a command."""

from __future__ import annotations

from typing import NamedTuple
from pathlib import Path

from paas_svc.home import ensure_home, home_dir
from paas_svc.store import StateStore, open_store
from paas_svc.vault import Vault


class Profile(NamedTuple):
    home: Path
    store: StateStore
    vault: Vault


_open_stores: list[StateStore] = []


def open_profile() -> Profile:
    home = ensure_home(home_dir())
    store = open_store(home)
    _open_stores.append(store)
    return Profile(home, store, Vault(store, home))


def close_profiles() -> None:
    """Close every database connection a command opened (main.run calls it at the end)."""
    while _open_stores:
        _open_stores.pop().close()


def service_manager(profile: Profile, reporter=None):
    from paas_svc.lifecycle import ServiceManager

    def engine_factory():
        from paas_svc.engine import Engine

        return Engine()

    return ServiceManager(profile.store, profile.vault, profile.home, engine_factory, reporter)
