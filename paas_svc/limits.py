"""Resource limits of a service's container: parsing `--memory 512m` and `--cpus 1.5`, and
rendering them back. Pure functions; stored in the service's spec as {"memory": bytes, "cpus": cores}."""

from __future__ import annotations

import re

from paas_svc.errors import InvalidInput

MIN_MEMORY_BYTES = 6 * 1024 * 1024  # Docker refuses less
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmg]?)(?:i?b)?", re.IGNORECASE)
UNLIMITED = ("none", "0", "unlimited")


def parse_memory(text: str) -> int | None:
    """`512m`, `1g`, `1.5G`, `268435456` (bytes; units are powers of 1024 as in Docker) -> bytes;
    `none`, `0` or `unlimited` -> None (no limit)."""
    if text.strip().lower() in UNLIMITED:
        return None
    match = _MEMORY.fullmatch(text.strip())
    if not match:
        raise InvalidInput(f"--memory {text!r} is not a size.", hint="Write it like 512m, 1g or 1.5g (or none for no limit).")
    value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value < MIN_MEMORY_BYTES:
        raise InvalidInput(f"--memory {text!r} is below Docker's minimum of 6m.")
    return value


def parse_cpus(text: str, available: int | None = None) -> float | None:
    """`1.5` -> 1.5 cores; `none`/`0` -> None. At most the engine host's CPUs when known."""
    if text.strip().lower() in UNLIMITED:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"--cpus {text!r} is not a number.", hint="Write it like 0.5, 1 or 1.5 (or none for no limit).") from None
    if not 0.01 <= value:
        raise InvalidInput(f"--cpus {text!r} must be at least 0.01 (or none for no limit).")
    if available is not None and value > available:
        raise InvalidInput(f"--cpus {text} is more than the {available} CPUs of the engine's host.")
    return round(value, 2)


def format_memory(value: int | None) -> str | None:
    if value is None:
        return None
    for unit, size in (("g", 1024 ** 3), ("m", 1024 ** 2), ("k", 1024)):
        if value >= size and (value * 10) % size == 0:  # exact to one decimal: 1.5g, 512m
            return f"{value / size:g}{unit}"
    return f"{value}b"


def limits_json(spec: dict) -> dict:
    """{"memory": "512m" | None, "memory_bytes": int | None, "cpus": float | None} for show and list --json."""
    limits = spec.get("limits") or {}
    return {"memory": format_memory(limits.get("memory")), "memory_bytes": limits.get("memory"), "cpus": limits.get("cpus")}
