"""Service kinds: one module per kind holds all of that kind's behaviour.

A template names its kind (`kind: postgres`); the module `paas_svc.kinds.<kind>` says what
the kind can do and does it. Adding a kind is adding one module here plus catalog data;
nothing else lists the kinds. Each module defines:

    NAME              the kind's name (= the module name)
    CREDENTIALS       the secret names its protocol probe and native backup read
    probe             probe(host, port, credentials) -> detail: a real login through the
                      published port, raising (ProtocolError, OSError, ...) while not ready;
                      None when the kind has no protocol (its templates use tcp/http/command)
    BACKUP            its native backup strategy (see paas_svc.kinds.strategy.Strategy), or None
    sanity_check      optional: sanity_check(engine, ctx) -> detail, run by `backup verify` on a
                      throwaway copy after a restore (e.g. "3 tables", "120 keys"); raises
                      BackupFailed when the restored data is not usable

and may define:

    container_command container_command(command, credentials) -> (command, environment):
                      the container's command (as rendered from the template) made to carry
                      no secret, plus the variables that carry it instead (redis: the
                      password goes to the server through a stdin config, never an argv)

The generic kind (kinds/generic.py) holds the options every template may use instead:
tcp/http/command readiness checks, command and volume-archive backups.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType

GENERIC = "generic"
# Modules of this package that are not kinds: what every kind shares (the backup strategy
# base, the app variables, the in-container clients, readiness probing); `protocols/` (the
# wire clients of the probes) is a package and so never a kind.
SHARED_MODULES = ("clients", "readiness", "strategy", "variables")


@lru_cache(maxsize=1)
def kind_names() -> tuple[str, ...]:
    return tuple(sorted(info.name for info in pkgutil.iter_modules(__path__)
                        if not info.ispkg and not info.name.startswith("_") and info.name not in SHARED_MODULES))


def kind_module(name: str) -> ModuleType:
    if name not in kind_names():
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}")
