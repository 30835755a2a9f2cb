"""The whole command tree against its conventions and the README (as sqlite-utils' test_docs
checks its docs): new commands inherit the rules by failing here until they follow them."""

from __future__ import annotations

import re

import pytest

from tests.support.command_tree import RAW_OUTPUT, SINGLE, TREE, WAITING
from tests.support.paths import ROOT

README = ROOT / "README.md"


def _options(command) -> dict[str, object]:
    """Every spelling (--json, -p, ...) of every option of a command."""
    return {flag: param for param in command.params for flag in (*param.opts, *param.secondary_opts)
            if flag.startswith("-")}


def test_the_tree_has_every_command():
    assert {"svc add", "svc list", "project rm", "env export", "key import", "doctor", "audit", "run"} <= set(TREE)
    assert {"target add", "tunnel", "svc move", "serve", "token create", "catalog validate", "svc wait", "completion"} <= set(TREE)
    assert len(TREE) >= 50
    assert SINGLE == {name for name in TREE if " " not in name}


@pytest.mark.parametrize("name", sorted(RAW_OUTPUT | WAITING))
def test_the_lists_name_real_commands(name):
    assert name in TREE


@pytest.mark.parametrize("name", sorted(TREE))
def test_every_command_and_option_has_help(name):
    command = TREE[name]
    assert command.help and command.help.strip(), f"{name} has no help text"
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert getattr(param, "help", None), f"{name} {param.opts} has no help text"


@pytest.mark.parametrize("name", sorted(set(TREE) - RAW_OUTPUT))
def test_every_command_that_reports_a_result_takes_json(name):
    assert "--json" in _options(TREE[name]), f"`paas {name}` reports a result but has no --json"


@pytest.mark.parametrize("name", sorted(WAITING))
def test_every_waiting_command_takes_a_timeout(name):
    assert "--timeout" in _options(TREE[name]), f"`paas {name}` waits but has no --timeout"


def test_a_short_flag_means_the_same_everywhere():
    from paas_svc.cli.options import SHORT_FLAGS

    seen = {}
    for name, command in TREE.items():
        for param in command.params:
            shorts = [flag for flag in param.opts if re.fullmatch(r"-[a-zA-Z]", flag)]
            longs = tuple(flag for flag in param.opts if flag.startswith("--"))
            for short in shorts:
                assert short in SHORT_FLAGS, f"`paas {name}` uses {short}, which the short-flags table lacks"
                assert set(longs) <= set(SHORT_FLAGS[short][0]), f"`paas {name}`: {short} is {longs}, not {SHORT_FLAGS[short][0]}"
                seen.setdefault(short, set()).update(longs)
    assert set(seen) == set(SHORT_FLAGS), "a short flag in the table is used by no command"


def test_the_readme_short_flags_table_is_the_code_table():
    from paas_svc.cli.options import SHORT_FLAGS

    text = README.read_text()
    section = text[text.index("### Short flags"):]
    section = section[:section.index("\n\n", section.index("| flag |"))]
    rows = re.findall(r"^\| `(-[a-z])` \| ([^|]+) \|", section, re.M)
    assert {short: tuple(re.findall(r"`(--[a-z-]+)`", longs)) for short, longs in rows} == \
           {short: longs for short, (longs, _) in SHORT_FLAGS.items()}


def _readme_commands() -> list[tuple[str, list[str]]]:
    """(command path, options shown) for each `paas ...` in the README's command table."""
    text = README.read_text()
    table = text[text.index("| command | what it does | stdout |"):]
    table = table[:table.index("\n\n")]
    found = []
    for row in table.splitlines()[2:]:
        first_cell = row.split(" | ")[0]
        for usage in re.findall(r"`(paas [^`]+)`", first_cell):
            usage = usage.replace("\\|", "|")
            words = usage.split()[1:]
            group = words[0]
            options = re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", usage)  # --s3
            if group in SINGLE:
                found.append((group, options))
                continue
            if len(words) > 2 and f"{group} {words[1]}" not in TREE and any(n.startswith(f"{group} {words[1]} ") for n in TREE):
                group = f"{group} {words[1]}"  # a nested group: `paas backup dest add|list ...`
                words = words[1:]
            for sub in words[1].split("|"):
                found.append((f"{group} {sub}", options))
    return found


README_COMMANDS = _readme_commands()


def test_the_readme_table_lists_every_command():
    assert {name for name, _ in README_COMMANDS} >= set(TREE)


@pytest.mark.parametrize("name,options", README_COMMANDS, ids=[name for name, _ in README_COMMANDS])
def test_every_readme_command_exists_with_the_options_it_shows(name, options):
    assert name in TREE, f"the README shows `paas {name}`, which does not exist"
    known = _options(TREE[name])
    missing = [option for option in options if option not in known]
    assert not missing, f"the README shows `paas {name}` with {missing}, which it does not take"
