"""The checks every bad-input case shares (tests/unit/test_bad_input.py, tests/engine/test_bad_input.py):
the exit code, one clear message on stderr, no traceback, nothing on stdout, and the state
database unchanged."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ADD = ("svc", "add")


@dataclass
class Case:
    id: str
    args: tuple
    exit_code: int
    message: str
    env: dict = field(default_factory=dict)


def case(id, args, exit_code, message, **kw):
    return pytest.param(Case(id, tuple(args), exit_code, message, **kw), id=id)


def state_dump(home: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(home / "state.db")) as db:
        return list(db.iterdump())


def assert_clean_failure(result, case: Case):
    assert result.exit_code == case.exit_code, result.output
    assert case.message in result.stderr, result.output
    assert "Traceback" not in result.stderr
    assert result.stdout == "", result.output
    # Progress lines ("- Pulling ...") may precede the error; the error itself is one message.
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(("- ", "  "))]
    if case.exit_code != 2 or lines[0].startswith("error:"):
        assert lines[0].startswith("error:"), result.output
        assert len(lines) <= 2 and all(line.startswith(("error:", "hint:")) for line in lines), result.output
    else:  # usage errors come from the argument parser: a usage line, a try-help line, one error box
        assert len(lines) <= 8, result.output
