"""The template format: the strict validator (every problem with its field path, exit 2,
nothing installed), user templates in the profile, and services keeping their definition."""

from __future__ import annotations

import json
import textwrap

import pytest

from paas_svc.catalog import (
    definition_digest,
    kind_capabilities,
    load_builtin,
    parse_template_text,
    spec_from_template,
    template_from_spec,
)
from paas_svc.template_schema import validate

VALID = textwrap.dedent("""\
    key: broker-2
    name: Broker
    description: MQTT broker for the tests.
    category: messaging
    tags: [mqtt, queue]
    kind: generic
    image: eclipse-mosquitto:2
    ports: {main: 1883, extra: [9001]}
    volume: /mosquitto/data
    secrets:
      user: {value: app}
      password: {generate: 32, alphabet: hex}
    environment:
      MQTT_USER: "{user}"
      MQTT_PASSWORD: "{password}"
    command: null
    variables:
      url: "mqtt://{user}:{password}@{host}:{port}"
      extra: {USER: "{user}", WS_PORT: "9001"}
    readiness:
      check: command
      command: [sh, -c, 'mosquitto_sub -u "$MQTT_USER" -P "$MQTT_PASSWORD" -t x -C 1 -W 2']
    backup: {strategy: volume}
    resources: {memory: 128m, cpus: 0.5}
    """)


def write(tmp_path, text: str, name: str = "template.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(text: str) -> list[str]:
    import yaml

    return validate(yaml.safe_load(text), kind_capabilities())


def test_a_complete_template_is_valid():
    assert problems_of(VALID) == []
    template = parse_template_text(VALID, "t.yaml")
    assert (template.kind, template.port, template.extra_ports, template.source) == ("generic", 1883, (9001,), "user")
    assert template.extra_variables == {"USER": "{user}", "WS_PORT": "9001"}


def test_every_builtin_is_written_in_the_user_format():
    from importlib import resources

    import yaml

    document = yaml.safe_load(resources.files("paas_svc").joinpath("catalog.yaml").read_text())
    for entry in document["templates"]:
        assert validate(entry, kind_capabilities()) == [], entry["key"]
    assert set(load_builtin()) == {entry["key"] for entry in document["templates"]}


@pytest.mark.parametrize("change,expected", [
    (("ports: {main: 1883, extra: [9001]}", "ports: {main: 70000}"), "ports.main: must be 1-65535"),
    (("ports: {main: 1883, extra: [9001]}", "ports: {main: 1883, mian: 2}"), "ports.mian: unknown field (allowed: main, extra)"),
    (("image: eclipse-mosquitto:2", "image: eclipse-mosquitto"), "image: 'eclipse-mosquitto' has no tag"),
    (("MQTT_PASSWORD: \"{password}\"", "MQTT_PASSWORD: \"{pasword}\""),
     "environment.MQTT_PASSWORD: placeholder {pasword} resolves to nothing (known: password, user)"),
    (("MQTT_USER:", "mqtt-user:"), "environment.mqtt-user: environment variable names must match [A-Z_][A-Z0-9_]*"),
    (("volume: /mosquitto/data", "volume: mosquitto/data"), "volume: must be an absolute path"),
    (("key: broker-2", "key: 'broker;rm -rf'"), "key: 'broker;rm -rf' must be lowercase letters"),
    (("  user: {value: app}", "  'us$er': {value: app}"), "secrets.us$er: names must match"),
    (("kind: generic", "kind: oracle"), "kind: must be one of amqp, generic, meilisearch, mongodb, mysql, postgres, redis, s3, smtp"),
    (("backup: {strategy: volume}", "backup: {strategy: native}"), "backup.strategy: the generic kind has no native backup"),
    (("check: command", "check: protocol"), "readiness.check: the generic kind has no protocol probe"),
    (("category: messaging", "category: messaging\ncolour: blue"), "colour: unknown field"),
    (("url: \"mqtt://{user}:{password}@{host}:{port}\"", "url: \"mqtt://{user}@{hots}\""),
     "variables.url: placeholder {hots} resolves to nothing (known: host, password, port, user)"),
    (("MQTT_USER: \"{user}\"", "MQTT_USER: \"{host}\""), "({host} and {port} exist only in variables)"),
    (("{generate: 32, alphabet: hex}", "{generate: 8}"), "secrets.password.generate: must be a length of 24-256"),
    (("resources: {memory: 128m, cpus: 0.5}", "resources: {memory: lots}"), "resources.memory: must be a size like 256m"),
    (('-P "$MQTT_PASSWORD"', "-P {password}"), "readiness.command[2]: {password} is not filled in commands run in the container"),
])
def test_each_problem_is_reported_with_its_field_path(change, expected):
    old, new = change
    assert old in VALID
    problems = problems_of(VALID.replace(old, new))
    assert any(expected in problem for problem in problems), problems


def test_all_problems_are_reported_at_once():
    text = VALID.replace("main: 1883", "main: 0").replace("image: eclipse-mosquitto:2", "image: eclipse-mosquitto")
    problems = problems_of(text.replace("volume: /mosquitto/data", "volume: data"))
    assert [p.split(":")[0] for p in problems] == ["image", "ports.main", "volume"]


def test_kind_credential_rules():
    text = VALID.replace("kind: generic", "kind: postgres").replace("check: command", "check: protocol")
    text = text.replace("      command: [sh, -c, 'mosquitto_sub -u \"$MQTT_USER\" -P \"$MQTT_PASSWORD\" -t x -C 1 -W 2']\n", "")
    assert "secrets: the postgres kind's protocol probe and native backup need a secret named 'db'" in problems_of(text)


def test_validate_command(tmp_path, paas, isolated_home):
    good = write(tmp_path, VALID)
    result = paas("catalog", "validate", str(good))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{good}: valid template broker-2")
    bad = write(tmp_path, VALID.replace("main: 1883", "main: 70000").replace("{password}\"\n", "{secret}\"\n"), "bad.yaml")
    result = paas("catalog", "validate", str(bad))
    assert result.exit_code == 2, result.output
    assert "ports.main: must be 1-65535" in result.stderr
    assert "environment.MQTT_PASSWORD: placeholder {secret} resolves to nothing" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not isolated_home.exists()  # nothing created


def test_add_of_an_invalid_file_installs_and_creates_nothing(tmp_path, paas, isolated_home):
    for text in (VALID.replace("image: eclipse-mosquitto:2", "image: x"), "key: [unclosed", "just text", ""):
        result = paas("catalog", "add", str(write(tmp_path, text)))
        assert result.exit_code == 2, result.output
        assert "Nothing was installed" in result.stderr, result.output
    assert not isolated_home.exists()


def test_user_templates_are_installed_listed_and_marked(tmp_path, paas, isolated_home):
    result = paas("catalog", "add", str(write(tmp_path, VALID)))
    assert result.exit_code == 0, result.output
    stored = isolated_home / "templates" / "broker-2.yaml"
    assert stored.read_text() == VALID and stored.stat().st_mode & 0o777 == 0o600
    listing = {t["key"]: t["source"] for t in json.loads(paas("catalog", "list", "--json").stdout)}
    assert listing["broker-2"] == "user" and listing["redis-7"] == "built-in"
    table = paas("catalog", "list").stdout
    assert any(line.split()[0] == "broker-2" and line.split()[-1] == "user" for line in table.splitlines())
    assert [t["key"] for t in json.loads(paas("catalog", "search", "mqtt", "--json").stdout)] == ["broker-2"]
    shown = paas("catalog", "show", "broker-2")
    assert shown.exit_code == 0 and "source" in shown.stdout and "user" in shown.stdout
    assert "readiness    command" in " ".join(shown.stdout.split("\n")) or "command" in shown.stdout
    again = paas("catalog", "add", str(write(tmp_path, VALID)))
    assert again.exit_code == 4 and "--replace" in again.stderr
    assert paas("catalog", "add", "--replace", str(write(tmp_path, VALID.replace("Broker", "Broker B")))).exit_code == 0
    assert json.loads(paas("catalog", "show", "broker-2", "--json").stdout)["name"] == "Broker B"


def test_a_user_template_may_not_shadow_a_builtin(tmp_path, paas, isolated_home):
    result = paas("catalog", "add", str(write(tmp_path, VALID.replace("key: broker-2", "key: redis-7"))))
    assert result.exit_code == 4 and "built-in template" in result.stderr, result.output
    assert not (isolated_home / "templates").exists()
    assert paas("catalog", "validate", str(tmp_path / "template.yaml")).exit_code == 4


def test_rm_refuses_builtins_unknown_keys_and_templates_in_use(tmp_path, paas, isolated_home):
    from paas_svc.state.models import REMOVED, ServiceRecord
    from paas_svc.state.store import open_store

    assert paas("catalog", "rm", "redis-7").exit_code == 2
    assert paas("catalog", "rm", "nothing-1").exit_code == 3
    assert paas("catalog", "add", str(write(tmp_path, VALID))).exit_code == 0
    store = open_store(isolated_home)
    if not store.list_projects():
        store.create_project("default")
    environment = store.get_environment("default", "development")
    template = parse_template_text(VALID, "t")
    store.insert_service(ServiceRecord(id="abcdefabcdef", project="default", env="development", env_id=environment.id,
                                               slug="mq", template="broker-2", image=template.image,
                                               spec=spec_from_template(template), secret=None, host_ports={1883: 40999},
                                               status=REMOVED))
    result = paas("catalog", "rm", "broker-2")
    assert result.exit_code == 4 and "default/development/mq" in result.stderr, result.output
    store.delete_service("abcdefabcdef")
    assert paas("catalog", "rm", "broker-2").exit_code == 0
    assert "broker-2" not in paas("catalog", "list").stdout


def test_a_service_spec_keeps_the_whole_definition():
    template = parse_template_text(VALID, "t")
    spec = json.loads(json.dumps(spec_from_template(template)))  # as the store keeps it
    assert spec["definition"] == template.definition and spec["template_source"] == "user"
    assert definition_digest(spec["definition"]) == template.digest
    again = template_from_spec("broker-2", spec)
    assert again == template


def test_a_broken_installed_template_is_reported_not_crashed(tmp_path, paas, isolated_home):
    assert paas("catalog", "add", str(write(tmp_path, VALID))).exit_code == 0
    (isolated_home / "templates" / "broker-2.yaml").write_text(VALID.replace("main: 1883", "main: -1"))
    result = paas("catalog", "list")
    assert result.exit_code == 8 and "broker-2.yaml no longer validates" in result.stderr and "ports.main" in result.stderr


SECRET_COMMAND = VALID.replace("command: null", 'command: [mosquitto, -c, /mosquitto/config/mosquitto.conf, -P, "{password}"]')
REDIS_TEMPLATE = textwrap.dedent("""\
    key: my-redis
    name: My Redis
    description: Redis as I like it.
    category: cache
    kind: redis
    image: redis:7-alpine
    ports: {main: 6379}
    volume: /data
    secrets:
      password: {generate: 32}
    command: [redis-server, --requirepass, "{password}", --maxmemory, 64mb]
    variables:
      url: "redis://default:{password}@{host}:{port}/0"
    readiness: {check: protocol}
    """)


def test_a_secret_in_the_container_command_is_refused():
    problems = problems_of(SECRET_COMMAND)
    assert problems == ["command[4]: {password} would put a secret on the container's command line (host `ps`, "
                        "`docker inspect`); pass it in `environment` for the image to read"]


def test_a_redis_kind_template_may_keep_requirepass_which_the_kind_takes_off_the_command_line():
    assert problems_of(REDIS_TEMPLATE) == []
    masterauth = problems_of(REDIS_TEMPLATE.replace("--maxmemory, 64mb", '--masterauth, "{password}"'))
    assert [problem.split(":")[0] for problem in masterauth] == ["command[4]"]
    assert "requirepass without it" in masterauth[0]
    embedded = problems_of(REDIS_TEMPLATE.replace('"{password}"', '"x{password}"'))
    assert [problem.split(":")[0] for problem in embedded] == ["command[2]"]


def test_a_template_installed_before_the_secret_command_rule_keeps_loading(tmp_path, paas, isolated_home):
    result = paas("catalog", "add", str(write(tmp_path, SECRET_COMMAND)))
    assert result.exit_code == 2 and "command[4]" in result.stderr
    assert paas("catalog", "add", str(write(tmp_path, VALID))).exit_code == 0
    (isolated_home / "templates" / "broker-2.yaml").write_text(SECRET_COMMAND)  # as an older paas installed it
    result = paas("catalog", "list")
    assert result.exit_code == 0, result.output
    assert "broker-2" in result.stdout


LEGACY_SPECS = {  # what services created before templates named their kind stored
    "postgres-16": ({"probe": "postgres"}, "postgres", "PostgresStrategy"),
    "redis-7": ({"probe": "redis"}, "redis", "RedisStrategy"),
    "mongodb-7": ({"probe": "mongodb"}, "mongodb", "MongoStrategy"),
    "meilisearch-1.10": ({"probe": "http", "path": "/keys", "bearer": "{key}"}, "meilisearch", "MeilisearchStrategy"),
    "minio": ({"probe": "http", "path": "/minio/health/live"}, "s3", "VolumeArchiveStrategy"),
    "mailpit": ({"probe": "http", "port": 8025, "path": "/readyz"}, "smtp", "VolumeArchiveStrategy"),
}


@pytest.mark.parametrize("key", sorted(LEGACY_SPECS))
def test_services_stored_before_kinds_keep_working(key):
    from paas_svc.kinds import kind_of, strategy_for
    from paas_svc.kinds.readiness import check_of
    from paas_svc.state.models import READY, ServiceRecord

    readiness, kind, strategy_name = LEGACY_SPECS[key]
    spec = {"port": 1, "extra_ports": [], "volume": "/data", "environment": {}, "command": None, "dsn": "x://{host}",
            "readiness": readiness}
    service = ServiceRecord(id="abcdefabcdef", project="p", env="e", slug="s", template=key, image="i", spec=spec,
                            secret=None, status=READY)
    assert kind_of(key, spec) == kind
    assert check_of(readiness, kind_of(key, spec)) == (("http", kind) if readiness["probe"] == "http" else ("protocol", kind))
    assert type(strategy_for(service)).__name__ == strategy_name


def test_environment_variables_include_the_templates_extra_variables():
    from paas_svc.state.models import READY, ServiceRecord
    from paas_svc.usecases.reveal import variables_of

    template = parse_template_text(VALID, "t")
    service = ServiceRecord(id="abcdefabcdef", project="p", env="e", slug="my-broker", template=template.key,
                            image=template.image, spec=spec_from_template(template), secret=None,
                            host_ports={1883: 41883, 9001: 49001}, status=READY)
    credentials = {"user": "app", "password": "f" * 32}
    assert variables_of(service, credentials, network_view=False) == {
        "MY_BROKER_URL": f"mqtt://app:{'f' * 32}@127.0.0.1:41883", "MY_BROKER_USER": "app", "MY_BROKER_WS_PORT": "9001"}
    assert variables_of(service, credentials, network_view=True)["MY_BROKER_URL"] == \
        f"mqtt://app:{'f' * 32}@paas-svc-abcdefabcdef:1883"
