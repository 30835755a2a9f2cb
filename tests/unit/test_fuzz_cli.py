"""Generated arguments for every command: never exit 1 (a bug), never a traceback, always a
documented exit code. In-process and bounded (about 200 examples in all); the engine is
pointed at a socket that does not exist, so nothing here needs Docker and nothing waits."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cli import run_paas
from tests.support.command_tree import TREE
from tests.support.state import stored_service

DOCUMENTED = {0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
# `run` executes its arguments (fuzzing it would run arbitrary programs); `serve` serves until stopped.
FUZZED = sorted(name for name in TREE if name not in ("run", "serve"))

NO_NUL = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))  # argv never holds NUL
TOKENS = st.one_of(
    st.sampled_from(["", "-", "--", ".", "/", "..", "~", "cache", "gone", "production", "default", "redis-7",
                     "0", "-1", "1e309", "nan", "9223372036854775808", "x" * 300, "--json", "--yes", "-y",
                     "dotenv", "json", "/dev/full", "/dev/zero", "a/b/"]),
    st.text(NO_NUL, max_size=16),
    st.binary(min_size=1, max_size=8).map(os.fsdecode).filter(lambda text: "\x00" not in text),
)

# Values that reach deeper than the parser (a known slug, env, template, format, number).
SENSIBLE = st.sampled_from(["cache", "gone", "production", "staging", "default", "redis-7", "json", "5", "out.txt"])
VALUES = st.one_of(SENSIBLE, SENSIBLE, TOKENS)


@st.composite
def invocations(draw):
    name = draw(st.sampled_from(FUZZED))
    command = TREE[name]
    args = list(name.split())
    for param in command.params:
        if param.param_type_name == "argument":
            if draw(st.integers(0, 5)):  # usually present
                args.append(draw(VALUES))
        elif param.name != "help" and draw(st.booleans()):
            flag = draw(st.sampled_from([*param.opts]))
            args.append(flag)
            if not param.is_flag:
                args.append(draw(VALUES))
    if draw(st.integers(0, 4)) == 0:  # now and then a stray word
        args.insert(draw(st.integers(len(name.split()), len(args))), draw(TOKENS))
    return args


@pytest.fixture
def fuzz_home(isolated_home, tmp_path, monkeypatch):
    stored_service(isolated_home, "cache", "production")
    stored_service(isolated_home, "gone", "staging", status="removed", host_port=40002)
    monkeypatch.chdir(tmp_path)  # relative -o paths land here, not in the repository
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/paas-fuzz.sock")
    return isolated_home


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(args=invocations())
def test_no_generated_arguments_end_in_a_bug(fuzz_home, monkeypatch, args):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    result = run_paas(*args)
    assert "Traceback" not in result.stderr, (args, result.output)
    assert result.exit_code in DOCUMENTED, (args, result.output)
    if result.exit_code not in (0, 9):
        last = result.stderr.strip().split("\n")[-1] if result.stderr.strip() else ""  # a \x1c in an echoed name is no line break on a terminal
        assert last.startswith("hint:") or result.exit_code == 2 and "Usage" in result.stderr, (args, result.output)
