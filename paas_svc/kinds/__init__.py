"""Service kinds: one module per kind holds all of that kind's behaviour.

A template names its kind (`kind: postgres`); the module `paas_svc.kinds.<kind>` says what
the kind can do and does it. Adding a kind is adding one module here plus catalog data;
nothing else lists the kinds. Each module defines:

    NAME              the kind's name (= the module name)
    CREDENTIALS       the secret names its protocol probe and native backup read
    PROTOCOL_PROBE    True when `readiness: {check: protocol}` has a real login to do
    NATIVE_BACKUP     True when `backup: {strategy: native}` has a tool-specific strategy
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType

GENERIC = "generic"


@lru_cache(maxsize=1)
def kind_names() -> tuple[str, ...]:
    return tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")))


def kind_module(name: str) -> ModuleType:
    if name not in kind_names():
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}")
