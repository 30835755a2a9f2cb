"""CLI behaviour that needs no engine: help texts, scope commands, errors without tracebacks."""

import json

import pytest

from paas_svc.cli.main import app

COMMANDS = [
    [], ["catalog"], ["catalog", "list"], ["catalog", "search"], ["catalog", "show"],
    ["catalog", "add"], ["catalog", "validate"], ["catalog", "rm"],
    ["project"], ["project", "create"], ["project", "list"], ["project", "use"], ["project", "rm"],
    ["env"], ["env", "create"], ["env", "list"], ["env", "show"], ["env", "rm"],
    ["svc"], ["svc", "add"], ["svc", "list"], ["svc", "show"], ["svc", "dsn"], ["svc", "rm"],
    ["svc", "start"], ["svc", "stop"], ["svc", "restart"], ["svc", "logs"], ["audit"],
    ["backup"], ["backup", "schedule"], ["backup", "run-due"], ["backup", "now"], ["backup", "list"], ["backup", "verify"],
    ["backup", "dest"], ["backup", "dest", "add"], ["backup", "dest", "list"], ["backup", "dest", "rm"],
    ["backup", "notify"], ["backup", "notify", "add"], ["backup", "notify", "list"], ["backup", "notify", "rm"],
    ["backup", "notify", "test"],
    ["backup", "pitr"], ["backup", "pitr", "enable"], ["backup", "pitr", "status"], ["backup", "pitr", "disable"],
    ["env", "set-target"], ["target"], ["target", "add"], ["target", "list"], ["target", "show"], ["target", "rm"],
    ["tunnel"], ["svc", "move"], ["svc", "import"],
    ["svc", "wait"], ["svc", "env"], ["svc", "connect"], ["svc", "rotate-password"], ["svc", "update"], ["svc", "stats"], ["completion"],
    ["serve"], ["token"], ["token", "create"], ["token", "list"], ["token", "revoke"],
    ["login"], ["logout"], ["whoami"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "paas")
def test_every_command_has_help(paas, command):
    result = paas(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) > 3


def _all_commands(group, prefix=()):
    import typer.main

    click_group = typer.main.get_command(group)
    found = []

    def walk(command, path):
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, path + (name,))
        else:
            found.append(path)
            assert command.help, f"{' '.join(path)} has no help text"

    walk(click_group, prefix)
    return found


def test_help_list_covers_every_registered_command():
    registered = {" ".join(path) for path in _all_commands(app)}
    listed = {" ".join(c) for c in COMMANDS}
    assert registered - listed <= {"env export", "run", "svc repair", "doctor", "key rotate", "key export", "key import",
                                   "svc backup", "svc restore", "svc clone", "svc upgrade"}


def test_catalog_json(paas):
    result = paas("catalog", "search", "data", "--json")
    assert result.exit_code == 0, result.output
    keys = [t["key"] for t in json.loads(result.stdout)]
    assert "postgres-16" in keys and "redis-7" in keys


def test_catalog_show_unknown_suggests(paas):
    result = paas("catalog", "show", "postgres")
    assert result.exit_code == 3
    assert "Did you mean 'postgres-16'" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_project_create_use_list(paas):
    assert paas("project", "create", "shop").exit_code == 0
    assert paas("project", "use", "shop").exit_code == 0
    projects = json.loads(paas("project", "list", "--json").stdout)
    assert {p["name"]: p["current"] for p in projects} == {"default": False, "shop": True}
    envs = json.loads(paas("env", "list", "--json").stdout)
    assert [e["name"] for e in envs] == ["development", "staging", "production"] and envs[0]["project"] == "shop"


def test_env_create_and_rm(paas):
    assert paas("env", "create", "preview").exit_code == 0
    assert paas("env", "create", "preview").exit_code == 4
    assert paas("env", "rm", "preview").exit_code == 0
    assert paas("env", "rm", "preview").exit_code == 3


def test_unknown_project_via_environment_variable(paas, monkeypatch):
    monkeypatch.setenv("PAAS_PROJECT", "nope")
    result = paas("svc", "list")
    assert result.exit_code == 3 and "Unknown project 'nope'" in result.stderr


def test_dsn_of_unknown_service(paas):
    result = paas("svc", "dsn", "cache")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "No service 'cache'" in result.stderr


def test_version(paas):
    result = paas("--version")
    assert result.exit_code == 0 and result.stdout.startswith("paas-svc ")
