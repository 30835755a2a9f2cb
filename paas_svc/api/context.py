"""What every request of one server shares: the profile's home, the org it answers for,
image overrides, and per-thread database connections (sqlite3 connections stay in the
thread that opened them; Starlette runs sync handlers on a pool of threads)."""

from __future__ import annotations

import threading
from pathlib import Path

from paas_svc.secrets.vault import Vault
from paas_svc.state.store import StateStore, open_store

DEFAULT_ORG = "default"


class ServerContext:
    def __init__(self, home: Path, org: str = DEFAULT_ORG, image_overrides: dict[str, str] | None = None,
                 ready_timeout: float = 120.0, max_upload_bytes: int = 16 * 1024**3):
        self.home = home
        self.max_upload_bytes = max_upload_bytes  # the largest backup file `svc restore` may upload
        self.org = org
        self.image_overrides = dict(image_overrides or {})
        self.ready_timeout = ready_timeout
        self._local = threading.local()
        from paas_svc.api.status_cache import StatusCache

        self.status_cache = StatusCache(home)
        open_store(home).close()  # migrate once, up front, before any request thread opens it

    def store(self) -> StateStore:
        """This thread's connection (opened on first use, kept for the thread's life)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.home)
        return store

    def vault(self) -> Vault:
        # A new Vault per use: it reads the key again, so a `paas key rotate` run while the
        # server is up is seen by the next request instead of a stale cached key.
        return Vault(self.store(), self.home)

    def manager(self, store: StateStore | None = None, target: str = "local"):
        """The ServiceManager of one target (the service's, or `local` for an add: it goes on
        to the environment's target itself) on this thread's connection (or the given one),
        with its own engine client."""
        from paas_svc.usecases.lifecycle import target_managers

        store = store or self.store()
        return target_managers(store, Vault(store, self.home), self.home)(target)

    def image_for(self, template_key: str) -> str | None:
        return self.image_overrides.get(template_key)
