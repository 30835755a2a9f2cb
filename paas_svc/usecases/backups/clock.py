"""The time run-due and schedules see: real UTC, or a moved clock for tests and catch-up runs
(`--now ISO` or PAAS_NOW)."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from paas_svc.errors import InvalidInput

ENV_VAR = "PAAS_NOW"


def parse_iso(text: str) -> datetime:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"Invalid time {text!r}.", hint="Give an ISO time, e.g. 2026-11-26T03:00:00Z.") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def now(override: str | None = None) -> datetime:
    text = override or os.environ.get(ENV_VAR)
    return parse_iso(text) if text else datetime.now(timezone.utc).replace(microsecond=0)
