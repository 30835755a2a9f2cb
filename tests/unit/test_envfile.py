"""The export renderers (paas_svc.envfile), without an engine: every format is read back by
the tool it is meant for (bash, dash, python-dotenv, json) and must give the values back."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import pytest
from dotenv import dotenv_values

from paas_svc.envfile import FORMATS, render, render_docker, render_dotenv, render_json, render_shell, shell_quote
from paas_svc.errors import ExitCode, InvalidInput

DSNS = {
    "CACHE_URL": "redis://:Zq3k9XW1aBcDeFgH@127.0.0.1:55001/0",
    "DB_URL": "postgresql://app:s3cretS3cret@paas-svc-0a1b2c3d4e5f:5432/app?sslmode=disable&x=1,2%20",
    "FEATURE_FLAGS_URL": "redis://user+tag@host.example-1:6379/0",
    "EMPTY_URL": "",
}

# Each one breaks some naive quoting: the shell format must carry all of them.
HOSTILE = {
    "SINGLE_QUOTE": "it's",
    "ONLY_QUOTES": "''\"\"'",
    "ESCAPED_QUOTE_PATTERN": "a'\\''b",
    "SPACES": "  leading and trailing  ",
    "DOLLAR": "$HOME ${HOME} $(id) $$ $1",
    "BACKTICKS": "`touch {sentinel}` and $(touch {sentinel})",
    "NEWLINES": "line one\nline two\n\nend\n",
    "BACKSLASHES": "C:\\path\\n\\t\\\\ end\\",
    "HASH": "pass#word # not a comment",
    "EQUALS": "a=b==c=",
    "GLOB": "* ? [a-z] ~ ~root",
    "SEMICOLON_PIPE": "x; exit 3 | cat & true && false",
    "BANG": "!! !$ !-1",
    "UNICODE": "pässwörd ☃ \t tab",
    "DASH_START": "-n -e --",
    "EMPTY": "",
}


def hostile_values(tmp_path) -> dict[str, str]:
    sentinel = tmp_path / "injected"
    return {name: value.format(sentinel=sentinel) if "{sentinel}" in value else value for name, value in HOSTILE.items()}


def eval_in_shell(shell: str, exports: str, names: list[str]) -> dict[str, str]:
    """`eval` the exports in `shell` and read the variables back from the environment with printenv."""
    script = 'eval "$PAAS_EXPORTS" || exit 99; printenv -0 ' + " ".join(names)
    completed = subprocess.run([shell, "-c", script], capture_output=True, env={"PATH": "/usr/bin:/bin", "PAAS_EXPORTS": exports},
                               timeout=30)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    values = completed.stdout.decode().split("\0")
    assert values[-1] == ""
    return dict(zip(names, values[:-1]))


# -- shell ---------------------------------------------------------------------------

SHELLS = [shell for shell in ("bash", "sh", "dash", "zsh") if shutil.which(shell)]


@pytest.mark.parametrize("shell", SHELLS)
def test_shell_export_evals_to_the_same_values(shell, tmp_path):
    variables = {**DSNS, **hostile_values(tmp_path)}
    exported = eval_in_shell(shell, render_shell(variables), list(variables))
    assert exported == variables
    assert not (tmp_path / "injected").exists(), "a value was executed as a command"


@pytest.mark.parametrize("shell", SHELLS)
def test_shell_export_overrides_an_existing_variable(shell):
    script = render_shell({"CACHE_URL": "new value"})
    completed = subprocess.run([shell, "-c", 'eval "$E"; printf %s "$CACHE_URL"'], capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin", "E": script, "CACHE_URL": "old"}, timeout=30)
    assert completed.stdout == "new value"


def test_bash_and_sh_are_both_tested():
    assert "bash" in SHELLS and "sh" in SHELLS


def test_shell_lines_are_export_with_single_quotes():
    assert render_shell({"A_URL": "x", "B_URL": "it's"}) == "export A_URL='x'\nexport B_URL='it'\\''s'\n"
    assert shell_quote("") == "''"


@pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "A=B", "", "A;rm", "A\nB", "ÄB"])
def test_shell_refuses_invalid_names(name):
    with pytest.raises(InvalidInput):
        render_shell({name: "x"})


def test_shell_refuses_nul_which_no_environment_holds():
    with pytest.raises(InvalidInput, match="NUL"):
        render_shell({"A_URL": "a\0b"})


# -- dotenv --------------------------------------------------------------------------

def test_dotenv_is_plain_name_equals_value_lines():
    text = render_dotenv(DSNS)
    assert text.splitlines() == [f"{name}={value}" for name, value in DSNS.items()]
    assert "export" not in text and "'" not in text and '"' not in text and " " not in text


def test_dotenv_read_by_python_dotenv_gives_the_values_back():
    assert dict(dotenv_values(stream=io.StringIO(render_dotenv(DSNS)))) == DSNS


def test_dotenv_every_portable_character_survives_python_dotenv():
    portable = "abcXYZ019_.:/@+,=%?&-"
    variables = {"ALL_URL": portable, "START_EQ_URL": "=" + portable, "DASHES_URL": "--a--"}
    assert dict(dotenv_values(stream=io.StringIO(render_dotenv(variables)))) == variables


@pytest.mark.parametrize("name", [name for name in HOSTILE if name not in ("EQUALS", "EMPTY")])
def test_dotenv_refuses_values_the_three_dialects_read_differently(name, tmp_path):
    value = hostile_values(tmp_path)[name]
    with pytest.raises(InvalidInput) as caught:
        render_dotenv({"DB_URL": "postgresql://ok@h/db", name: value})
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    assert name in error.message
    assert "--format json" in error.hint and "shell" in error.hint
    assert value not in error.message, "the error must not print the (secret) value"


def test_dotenv_refusal_names_the_character():
    with pytest.raises(InvalidInput, match=r"contains '\$'"):
        render_dotenv({"DB_URL": "postgresql://u:pa$$@h/db"})
    with pytest.raises(InvalidInput, match="contains a space"):
        render_dotenv({"DB_URL": "a b"})


# -- docker --env-file ------------------------------------------------------------------

def test_docker_carries_everything_on_one_line_verbatim(tmp_path):
    one_line = {name: value for name, value in hostile_values(tmp_path).items() if "\n" not in value}
    text = render_docker(one_line)
    assert text.splitlines() == [f"{name}={value}" for name, value in one_line.items()]


@pytest.mark.parametrize("value", ["a\nb", "trailing\n", "a\rb", "a\0b"])
def test_docker_refuses_what_one_line_cannot_carry(value):
    with pytest.raises(InvalidInput) as caught:
        render_docker({"DB_URL": value})
    assert "--format json" in caught.value.hint


def test_docker_and_dotenv_agree_on_real_dsns():
    assert render_docker(DSNS) == render_dotenv(DSNS)


# -- json and dispatch -----------------------------------------------------------------

def test_json_round_trips_any_value(tmp_path):
    variables = {**DSNS, **hostile_values(tmp_path), "NUL": "a\0b"}
    text = render_json(variables)
    assert text.endswith("}\n")
    assert json.loads(text) == variables


def test_render_dispatches_on_the_format():
    assert render(DSNS, "dotenv") == render_dotenv(DSNS)
    assert render(DSNS, "docker") == render_docker(DSNS)
    assert render(DSNS, "shell") == render_shell(DSNS)
    assert render(DSNS, "json") == render_json(DSNS)


def test_unknown_format_is_a_usage_error_listing_the_formats():
    with pytest.raises(InvalidInput) as caught:
        render(DSNS, "yaml")
    assert caught.value.exit_code == ExitCode.USAGE
    for fmt in FORMATS:
        assert fmt in caught.value.hint


@pytest.mark.parametrize("fmt", ["dotenv", "docker", "shell"])
def test_no_variables_render_nothing(fmt):
    assert render({}, fmt) == ""


def test_no_variables_in_json_is_an_empty_object():
    assert render({}, "json") == "{}\n"


def test_order_is_kept():
    variables = {"B_URL": "b", "A_URL": "a"}
    for fmt in FORMATS:
        text = render(variables, fmt)
        assert text.index("B_URL") < text.index("A_URL")
