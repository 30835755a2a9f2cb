"""`paas env create NAME --isolated` without an engine: the network's name, what the state keeps,
and what `env create|show|list` say. The network itself (made, joined, unreachable from paas-apps)
is tested against the real engine in tests/engine/test_isolated_env.py."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from paas_svc.errors import InvalidInput
from paas_svc.naming import NETWORK_NAME, env_network_name
from paas_svc.state.home import ensure_home
from paas_svc.state.store import MIGRATIONS, open_store


def test_the_network_is_named_from_project_and_env():
    assert env_network_name("shop", "staging") == "paas-shop_staging"


def test_no_two_environments_share_a_network_name():
    # With a hyphen as separator both would be paas-a-b-c; an underscore cannot occur in either name.
    assert env_network_name("a-b", "c") != env_network_name("a", "b-c")
    assert env_network_name("apps", "x") != NETWORK_NAME


# What Swarm accepts as a network name (swarmkit's validateAnnotations): a DNS label of <= 63.
SWARM_NAME = re.compile(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*")


@pytest.mark.parametrize("project, env", [("shop", "staging"), ("a", "b"), ("p" * 40, "e" * 40), ("a-b", "c-d"),
                                          ("x" * 29, "y" * 28), ("x" * 29, "y" * 29), ("a" * 40, "b" * 17)])
def test_every_network_name_is_one_swarm_accepts(project, env):
    name = env_network_name(project, env)
    assert SWARM_NAME.fullmatch(name) and len(name) <= 63, name


def test_a_long_name_is_shortened_and_stays_distinct():
    assert env_network_name("x" * 29, "y" * 28) == f"paas-{'x' * 29}_{'y' * 28}"  # 63: kept whole
    long = env_network_name("p" * 40, "e" * 40)
    assert len(long) == 63 and long.startswith(f"paas-{'p' * 40}_")
    assert long != env_network_name("p" * 40, "e" * 39)  # same first 54 characters, another hash
    assert long == env_network_name("p" * 40, "e" * 40)  # and always the same for the same env


@pytest.mark.parametrize("project, env", [("Shop", "staging"), ("shop", "st/aging"), ("shop", ""), ("shop", "x" * 41),
                                          ("shop", "a\nb"), ("-shop", "staging"), ("shop", "staging.x"), ("shop", "st_aging")])
def test_a_name_no_environment_can_have_is_refused(project, env):
    with pytest.raises(InvalidInput):
        env_network_name(project, env)


@pytest.fixture
def home(isolated_home):
    return ensure_home(isolated_home)


def test_the_state_keeps_the_network_of_an_isolated_environment_only(home):
    store = open_store(home)
    store.create_project("shop")
    created = store.create_environment("shop", "secure", isolated=True)
    assert (created.isolated, created.network, created.network_name) == (True, "paas-shop_secure", "paas-shop_secure")
    plain = store.create_environment("shop", "preview")
    assert (plain.isolated, plain.network, plain.network_name) == (False, None, NETWORK_NAME)
    default = store.get_environment("shop", "production")
    assert (default.isolated, default.network_name) == (False, NETWORK_NAME)
    store.close()
    assert open_store(home).get_environment("shop", "secure").network == "paas-shop_secure"


def test_existing_environments_keep_paas_apps_after_the_migration(home):
    """A state written before the network column: its environments keep paas-apps."""
    store = open_store(home)
    store.create_project("shop")
    store.close()
    network_migration = next(i for i, sql in enumerate(MIGRATIONS) if "ADD COLUMN network" in sql)
    with sqlite3.connect(home / "state.db") as db:  # back to the schema before the network column
        db.execute("ALTER TABLE environments DROP COLUMN network")
        if network_migration + 1 < len(MIGRATIONS):  # and before the ones after it (8: audit buckets)
            assert len(MIGRATIONS) == network_migration + 4, "undo the later migrations here too"
            db.execute("DROP TABLE pitr_archives")  # 10: point-in-time recovery
            db.execute("DROP INDEX audit_bucket")
            db.execute("ALTER TABLE audit DROP COLUMN bucket")
            db.execute("ALTER TABLE audit DROP COLUMN count")
            for table, column in (("services", "volume_generation"), ("services", "safety_volume"),  # 9: volume swaps
                                  ("services", "safety_volume_at"), ("operations", "old_volume"), ("operations", "new_volume"),
                              ("operations", "new_database"), ("services", "safety_database")):
                db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute("PRAGMA user_version = %d" % network_migration)
    db.close()
    store = open_store(home)
    assert [(e.name, e.network_name) for e in store.list_environments("shop")] == [
        ("development", NETWORK_NAME), ("staging", NETWORK_NAME), ("production", NETWORK_NAME)]


def test_env_create_isolated_is_shown_by_show_and_list(paas):
    created = paas("env", "create", "secure", "--isolated", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout) | {"created_at": None} == {
        "action": "create", "project": "default", "env": "secure", "target": "local", "isolated": True,
        "network": "paas-default_secure", "created_at": None}
    plain = paas("env", "create", "preview", "--json")
    assert (json.loads(plain.stdout)["isolated"], json.loads(plain.stdout)["network"]) == (False, "paas-apps")

    shown = json.loads(paas("env", "show", "secure", "--json").stdout)
    assert (shown["isolated"], shown["network"], shown["services"]) == (True, "paas-default_secure", 0)
    text = paas("env", "show", "secure")
    assert text.exit_code == 0 and "paas-default_secure" in text.stdout and "yes" in text.stdout

    listed = {e["name"]: (e["isolated"], e["network"]) for e in json.loads(paas("env", "list", "--json").stdout)}
    assert listed["secure"] == (True, "paas-default_secure")
    assert listed["production"] == listed["preview"] == (False, "paas-apps")
    table = paas("env", "list").stdout
    assert "NETWORK" in table and "paas-default_secure" in table


def test_env_show_of_an_unknown_environment_is_exit_3(paas):
    result = paas("env", "show", "nowhere")
    assert result.exit_code == 3
    assert "Unknown environment" in result.stderr


def test_env_create_isolated_with_an_invalid_name_is_exit_2_and_creates_nothing(paas):
    result = paas("env", "create", "Bad.Name", "--isolated")
    assert result.exit_code == 2
    assert "Bad.Name" not in paas("env", "list").stdout


def test_env_rm_of_an_isolated_environment_whose_engine_is_unreachable_warns_that_the_network_stays(paas, monkeypatch, tmp_path):
    assert paas("env", "create", "secure", "--isolated").exit_code == 0
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    removed = paas("env", "rm", "secure", "--json")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout) == {"action": "rm", "project": "default", "env": "secure",
                                          "network": "paas-default_secure", "network_removed": False}
    assert "paas-default_secure" in removed.stderr and "docker network rm paas-default_secure" in removed.stderr
    assert "secure" not in [e["name"] for e in json.loads(paas("env", "list", "--json").stdout)]
