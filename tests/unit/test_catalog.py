import re

import pytest

from paas_svc.catalog import get_template, load_catalog, search_templates
from paas_svc.dsn import render_command, render_dsn, render_environment
from paas_svc.errors import NotFound
from paas_svc.secrets.generate import ALPHABET, generate_credentials
from tests.support.paths import ROOT

SEED_IMAGES = {
    "postgres-16": "postgres:16-alpine",
    "redis-7": "redis:7-alpine",
    "mongodb-7": "mongo:7",
    "meilisearch-1.10": "getmeili/meilisearch:v1.10",
    "minio": "minio/minio:latest",
    "mailpit": "axllent/mailpit:latest",
    "mariadb-11": "mariadb:11",
    "rabbitmq-4": "rabbitmq:4-management-alpine",
    "valkey-8": "valkey/valkey:8-alpine",
}
SEED_PORTS = {"postgres-16": 5432, "redis-7": 6379, "mongodb-7": 27017, "meilisearch-1.10": 7700, "minio": 9000, "mailpit": 1025,
              "mariadb-11": 3306, "rabbitmq-4": 5672, "valkey-8": 6379}


def test_catalog_has_exactly_the_seed_templates():
    catalog = load_catalog()
    assert {key: t.image for key, t in catalog.items()} == SEED_IMAGES
    assert {key: t.port for key, t in catalog.items()} == SEED_PORTS


@pytest.mark.parametrize("query,expected", [("redis", "redis-7"), ("search", "meilisearch-1.10"), ("data", "postgres-16"),
                                            ("S3", "minio"), ("smtp", "mailpit"), ("document", "mongodb-7")])
def test_search_finds(query, expected):
    assert expected in [t.key for t in search_templates(query)]


@pytest.mark.parametrize("query,expected", [("sql", ["mariadb-11"]), ("queue", ["rabbitmq-4", "redis-7", "valkey-8"]),
                                            ("cache", ["redis-7", "valkey-8"]), ("mysql", ["mariadb-11"]), ("amqp", ["rabbitmq-4"])])
def test_search_finds_the_new_builtins(query, expected):
    assert [t.key for t in search_templates(query)][:len(expected)] == expected


def test_new_builtin_facts():
    mariadb, rabbitmq, valkey = get_template("mariadb-11"), get_template("rabbitmq-4"), get_template("valkey-8")
    assert (mariadb.kind, mariadb.port, mariadb.volume, mariadb.dsn) == (
        "mysql", 3306, "/var/lib/mysql", "mysql://{user}:{password}@{host}:{port}/{db}")
    assert set(mariadb.environment) == {"MARIADB_USER", "MARIADB_PASSWORD", "MARIADB_DATABASE", "MARIADB_ROOT_PASSWORD"}
    assert (rabbitmq.kind, rabbitmq.ports, rabbitmq.volume, rabbitmq.hostname) == ("amqp", (5672, 15672), "/var/lib/rabbitmq", "rabbitmq")
    assert rabbitmq.dsn == "amqp://{user}:{password}@{host}:{port}/%2F"
    assert set(rabbitmq.environment) == {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"}
    assert (valkey.kind, valkey.port, valkey.volume, valkey.dsn) == ("redis", 6379, "/data", get_template("redis-7").dsn)


def test_search_ranks_name_matches_first():
    assert search_templates("search")[0].key == "meilisearch-1.10"


def test_search_without_match_is_empty():
    assert search_templates("oracle") == []


def test_unknown_template_suggests():
    with pytest.raises(NotFound) as raised:
        get_template("redis7")
    assert "redis-7" in raised.value.hint


def _rendered(key):
    template = get_template(key)
    credentials = generate_credentials(template.credentials)
    return template, credentials, render_dsn(template.dsn, credentials, "h", 1), \
        render_environment(template.environment, credentials), render_command(list(template.command) if template.command else None, credentials)


def test_postgres_facts():
    template, creds, dsn, env, command = _rendered("postgres-16")
    assert env == {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": creds["password"], "POSTGRES_DB": "db"}
    assert template.volume == "/var/lib/postgresql/data"
    assert dsn == f"postgres://app:{creds['password']}@h:1/db"


def test_redis_facts():
    template, creds, dsn, env, command = _rendered("redis-7")
    assert command == ["redis-server", "--appendonly", "yes"]  # the password: a stdin config (kinds/redis.py)
    assert creds["password"] not in " ".join(command) and env == {}
    assert template.volume == "/data"
    assert dsn == f"redis://default:{creds['password']}@h:1/0"


def test_redis_container_command_carries_no_password():
    from paas_svc.kinds.redis import CONFIG_VARIABLE, START_SCRIPT, container_command

    for key, server in (("redis-7", "redis-server"), ("valkey-8", "valkey-server")):
        template, creds, _, _, command = _rendered(key)
        argv, environment = container_command(command, creds)
        assert argv == ["sh", "-c", START_SCRIPT, server, "--appendonly", "yes"]
        assert creds["password"] not in " ".join(argv)
        assert environment == {CONFIG_VARIABLE: f'requirepass "{creds["password"]}"'}


def test_redis_container_command_moves_an_old_requirepass_off_the_command_line():
    from paas_svc.kinds.redis import CONFIG_VARIABLE, START_SCRIPT, container_command

    legacy = ["/usr/local/bin/redis-server", "--requirepass", "Old0ne", "--appendonly", "yes"]
    assert container_command(legacy, {"password": "Old0ne"}) == (
        ["sh", "-c", START_SCRIPT, "/usr/local/bin/redis-server", "--appendonly", "yes"], {CONFIG_VARIABLE: 'requirepass "Old0ne"'})
    # No password at all: the command as it was, without the config shell.
    assert container_command(["redis-server", "--appendonly", "yes"], {}) == (["redis-server", "--appendonly", "yes"], {})
    # Not the server itself (the image's own command, or another program): left alone.
    assert container_command(None, {"password": "p"}) == (None, {})
    assert container_command(["redis-sentinel", "/etc/s.conf"], {"password": "p"}) == (["redis-sentinel", "/etc/s.conf"], {})


def test_redis_config_quote_escapes_everything_but_plain_characters():
    from paas_svc.kinds.redis import config_quote

    assert config_quote("Abc-1_2.3") == '"Abc-1_2.3"'
    assert config_quote('a b"c\\d#\n') == '"a\\x20b\\x22c\\x5cd\\x23\\x0a"'
    assert config_quote("é") == '"\\xc3\\xa9"'


def test_mongodb_facts():
    template, creds, dsn, env, _ = _rendered("mongodb-7")
    assert env == {"MONGO_INITDB_ROOT_USERNAME": creds["user"], "MONGO_INITDB_ROOT_PASSWORD": creds["password"]}
    assert template.volume == "/data/db"
    assert dsn == f"mongodb://{creds['user']}:{creds['password']}@h:1/?authSource=admin"


def test_meilisearch_facts():
    template, creds, dsn, env, _ = _rendered("meilisearch-1.10")
    assert env["MEILI_ENV"] == "production" and len(env["MEILI_MASTER_KEY"]) >= 16
    assert template.volume == "/meili_data"
    assert dsn == "http://h:1"  # the key is {SLUG}_API_KEY: Meilisearch clients take it apart


def test_minio_facts():
    template, creds, dsn, env, command = _rendered("minio")
    assert command == ["server", "/data", "--console-address", ":9001"]
    assert len(env["MINIO_ROOT_PASSWORD"]) >= 8 and len(env["MINIO_ROOT_USER"]) >= 3
    assert template.extra_ports == (9001,)
    assert dsn == f"http://{creds['user']}:{creds['password']}@h:1"


def test_mailpit_facts():
    template, creds, dsn, env, _ = _rendered("mailpit")
    assert env == {"MP_DATABASE": "/data/mailpit.db"}
    assert template.port == 1025 and template.extra_ports == (8025,)
    assert dsn == "smtp://h:1"


@pytest.mark.parametrize("key", list(SEED_IMAGES))
def test_generated_credentials_are_long_letters_and_digits(key):
    template = get_template(key)
    for name, value in generate_credentials(template.credentials).items():
        if "generate" in template.credentials[name]:
            assert len(value) >= 24
            assert set(value) <= set(ALPHABET)
            assert re.fullmatch(r"[A-Za-z0-9]+", value)


def test_generated_credentials_differ_each_time():
    spec = get_template("redis-7").credentials
    assert generate_credentials(spec) != generate_credentials(spec)


def test_catalog_ships_inside_the_package():
    from importlib import resources

    assert resources.files("paas_svc").joinpath("catalog.yaml").is_file()


def test_wheel_ships_the_catalog(tmp_path):
    """A plain `pip install .` must find catalog.yaml: build the wheel and look inside."""
    import subprocess
    import sys
    import zipfile

    root = ROOT
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(root)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("paas_svc-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("paas_svc/catalog.yaml").decode()
    assert shipped == (root / "catalog.yaml").read_text()
    assert "redis-7" in shipped


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/full"])
def test_validate_reads_a_device_only_up_to_the_template_limit(paas, device):
    """A device reports size 0 and never ends: reading it whole ran out of memory (the CLI fuzz found it)."""
    result = paas("catalog", "validate", device)
    assert result.exit_code == 2 and "larger than 64 KiB: not a template" in result.stderr, result.output
