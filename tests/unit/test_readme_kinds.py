"""The README's table of the secrets each kind needs (*Custom templates*) is the kind modules'
CREDENTIALS: a kind added or changed without its row fails here, so the table cannot go stale."""

from __future__ import annotations

import re

from tests.support.paths import ROOT


def _readme_kind_secrets() -> dict[str, tuple[str, ...]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Custom templates"):]
    table = section[section.index("| kind | secrets it needs |"):]
    table = table[:table.index("\n\n")]
    rows = {}
    for row in table.splitlines()[2:]:
        kind_cell, secrets_cell = row.split(" | ")[:2]
        [kind] = re.findall(r"`([a-z0-9]+)`", kind_cell)
        # The names are the backticked words before any remark in parentheses.
        rows[kind] = tuple(re.findall(r"`([a-z_]+)`", secrets_cell.split("(")[0]))
    return rows


def test_the_readme_names_the_secrets_of_every_kind_as_its_module_does():
    from paas_svc.kinds import kind_module, kind_names

    assert _readme_kind_secrets() == {name: tuple(kind_module(name).CREDENTIALS) for name in kind_names()}


def test_the_kind_row_of_the_field_table_lists_every_kind():
    from paas_svc.kinds import kind_names

    text = (ROOT / "README.md").read_text()
    [row] = [line for line in text.splitlines() if line.startswith("| `kind` |")]
    what_it_says = re.sub(r"\([^)]*\)", "", row.split(" | ")[1])  # remarks in parentheses name other things
    assert set(re.findall(r"`([a-z0-9]+)`", what_it_says)) == set(kind_names())
