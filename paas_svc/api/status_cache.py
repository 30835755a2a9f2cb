"""Live statuses for many concurrent requests: one engine request serves every request
in the next half second, unless a service it lacks has appeared (then it is asked again),
and any change this server makes drops it. Fifty dashboards polling every second cost
the engine two list requests a second instead of fifty."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from paas_svc.errors import NotFound
from paas_svc.locks import service_lock_held
from paas_svc.models import PROVISIONING, ServiceRecord
from paas_svc.status import live_states, live_status

MAX_AGE_SECONDS = 0.5


class StatusCache:
    def __init__(self, home: Path, max_age: float = MAX_AGE_SECONDS):
        self.home = home
        self.max_age = max_age
        self._guard = threading.Lock()
        self._states: dict | None = None
        self._taken_at = 0.0

    def invalidate(self) -> None:
        with self._guard:
            self._states = None

    def statuses(self, profile_id: str, services: list[ServiceRecord], reload) -> dict[str, str]:
        """Live status per service id. The lock of a row read as provisioning is looked at
        ONCE: if it is free, the add may just have finished (it records Ready or Failed, then
        releases the lock), so the row is read again with `reload(id)` and replaced in
        `services`; only a row still provisioning with no lock held is a crashed add."""
        if not services:
            return {}
        add_running: dict[str, bool] = {}
        for index, service in enumerate(services):
            if service.status != PROVISIONING:
                continue
            if service_lock_held(self.home, service.env_id, service.slug):
                add_running[service.id] = True
                continue
            try:
                services[index] = service = reload(service.id)
            except NotFound:  # purged meanwhile: keep the row as read
                pass
            add_running[service.id] = service.status != PROVISIONING
        states = self._fresh_states(profile_id, {s.id for s in services if s.status != PROVISIONING})
        return {service.id: live_status(service, states.get(service.id), add_running=add_running.get(service.id, True))
                for service in services}

    def _fresh_states(self, profile_id: str, wanted_ids: set[str]) -> dict:
        with self._guard:
            states, taken_at = self._states, self._taken_at
        if states is not None and time.monotonic() - taken_at < self.max_age and wanted_ids <= states.keys():
            return states
        taken_at = time.monotonic()
        states = live_states(profile_id)
        with self._guard:
            if taken_at >= self._taken_at:
                self._states, self._taken_at = states, taken_at
        return states
