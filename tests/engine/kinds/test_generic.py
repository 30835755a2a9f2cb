"""A user template end to end on the real engine: the README's "Custom templates" example
(read out of the README), provisioned with the Mosquitto stand-in (Debian's mosquitto laid
out like eclipse-mosquitto:2), through add, list, show, dsn, env export, run, backup,
restore, clone, upgrade and doctor, with a backup/restore round trip of a retained message
made with the real mosquitto clients."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.support.cli import run_paas
from tests.support.engine import profile_id
from tests.support.images import MOSQUITTO_IMAGE
from tests.support.kinds import READY_TIMEOUT, backup, dsn, restore, show
from tests.support.paths import ROOT

README = ROOT / "README.md"


def readme_template() -> str:
    section = README.read_text().split("## Custom templates", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def mqtt(engine, url, *arguments: str) -> str:
    """Run a mosquitto client in a throwaway container on paas-apps, as an app would."""
    output = engine.containers.run(MOSQUITTO_IMAGE, [*arguments, "-h", url.hostname, "-p", str(url.port),
                                                     "-u", url.username, "-P", url.password],
                                   entrypoint=[], network="paas-apps", remove=True, labels={"paas-test.client": "1"})
    return output.decode().strip()


def retained(engine, url) -> str:
    return mqtt(engine, url, "mosquitto_sub", "-t", "greeting", "-C", "1", "-W", "5")


def network_dsn(slug: str, env: str = "production"):
    from urllib.parse import urlsplit

    result = run_paas("svc", "dsn", slug, "--env", env, "--network")
    assert result.exit_code == 0, result.output
    return urlsplit(result.stdout.strip())


def test_readme_example_through_every_command(engine, tmp_path):
    template_file = tmp_path / "mosquitto.yaml"
    template_file.write_text(readme_template())
    assert run_paas("catalog", "validate", str(template_file)).exit_code == 0
    added = run_paas("catalog", "add", str(template_file))
    assert added.exit_code == 0, added.output
    listed = {t["key"]: t["source"] for t in json.loads(run_paas("catalog", "list", "--json").stdout)}
    assert listed["mosquitto-2"] == "user"

    result = run_paas("svc", "add", "mq", "--template", "mosquitto-2", "--image", MOSQUITTO_IMAGE, "--env", "production",
                      "--timeout", READY_TIMEOUT)
    assert result.exit_code == 0, result.output
    info = show("mq")
    assert info["kind"] == "generic" and info["template_source"] == "user" and info["status"] == "Ready"
    assert "same as the catalog's" in info["template_definition"]
    mine = f"paas.profile={profile_id(Path(os.environ['PAAS_HOME']))}"  # other profiles may use the slug too
    [container] = engine.containers.list(filters={"label": ["paas.slug=mq", "paas.env=production", mine]})
    assert container.attrs["HostConfig"]["Memory"] == 128 * 1024 * 1024  # resources.memory of the template

    url = dsn("mq")
    assert url.scheme == "mqtt" and url.username == "app" and url.hostname == "127.0.0.1"
    exported = run_paas("env", "export", "--env", "production", "--format", "json")
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout) == {"MQ_URL": url.geturl(), "MQ_HOST": "127.0.0.1", "MQ_PORT": str(url.port)}
    ran = run_paas("run", "--env", "production", "--", "sh", "-c", 'test "$MQ_PORT" = ' + str(url.port))
    assert ran.exit_code == 0, ran.output

    inside = network_dsn("mq")
    mqtt(engine, inside, "mosquitto_pub", "-t", "greeting", "-m", "hello", "-r", "-q", "1")
    archive = tmp_path / "mq.tar"
    backup("mq", archive)
    assert url.password.encode() not in archive.read_bytes()
    mqtt(engine, inside, "mosquitto_pub", "-t", "greeting", "-m", "changed", "-r", "-q", "1")
    assert retained(engine, inside) == "changed"
    restore("mq", archive)
    assert retained(engine, inside) == "hello"

    cloned = run_paas("svc", "clone", "mq", "--env", "production", "--to-env", "staging")
    assert cloned.exit_code == 0, cloned.output
    clone = network_dsn("mq", "staging")
    assert clone.password != inside.password and retained(engine, clone) == "hello"

    # A new definition of the template changes nothing for the services made from the old one.
    template_file.write_text(readme_template().replace("description: MQTT broker", "description: Another MQTT broker"))
    assert run_paas("catalog", "add", "--replace", str(template_file)).exit_code == 0
    assert "the catalog's is now sha256:" in show("mq")["template_definition"]
    refused = run_paas("catalog", "rm", "mosquitto-2")
    assert refused.exit_code == 4 and "default/production/mq" in refused.stderr

    engine.images.get(MOSQUITTO_IMAGE).tag("paas-test/mosquitto", "2-upgrade")
    try:
        upgraded = run_paas("svc", "upgrade", "mq", "--env", "production", "--image", "paas-test/mosquitto:2-upgrade", "--yes")
        assert upgraded.exit_code == 0, upgraded.output
        assert retained(engine, inside) == "hello"
        doctor = run_paas("doctor")
        assert doctor.exit_code == 0, doctor.output
    finally:
        for slug, env in (("mq", "production"), ("mq", "staging")):
            run_paas("svc", "rm", slug, "--env", env, "--purge", "--yes", "--no-backup")
        engine.images.remove("paas-test/mosquitto:2-upgrade")
