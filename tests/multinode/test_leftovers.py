"""What the multinode tier did not cover before: `doctor --fix` on a remote target, a clone
from one target into an environment bound to another, `svc repair` putting back a Swarm
placement changed by hand, a MongoDB service's password on Swarm (a Docker secret, nowhere in
the service's spec), and doctor on a drained node. The nodes (fixtures `remote_node`, `swarm`,
tests/multinode/conftest.py) are shared by the tier: every test removes its services, and a
drained node is set back to active, also when it fails."""

from __future__ import annotations

import json

from tests.support.cli import ok
from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE, STANDIN_IMAGE
from tests.support.nodes import Swarm, add_tls_target
from tests.support.polling import eventually


def shown(paas, slug: str, env: str) -> dict:
    return json.loads(ok(paas("svc", "show", slug, "--env", env, "--json")).stdout)


def findings(paas, *args) -> tuple[int, list[dict]]:
    result = paas("doctor", "--json", *args)
    report = json.loads(result.stdout)
    return result.exit_code, report["findings"] if isinstance(report, dict) else report


def add_swarm_target(paas, swarm: Swarm, name: str) -> None:
    certs = swarm.cluster.certs
    added = ok(paas("target", "add", name, "--docker-host", swarm.manager.url, "--publish-address", swarm.manager.ip,
                    "--tls-ca", str(certs.ca_file), "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                    "--json"))
    assert json.loads(added.stdout)["kind"] == "swarm"


def swarm_spec(swarm: Swarm, service: str) -> dict:
    return json.loads(swarm.manager.sh(f"docker service inspect {service}"))[0]["Spec"]


def running_on(swarm: Swarm, service: str) -> list[str]:
    out = swarm.manager.sh(f"docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}'")
    return [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["Running"]]


def remove_leftovers_on(node, service: str) -> None:
    """Task containers and the volume of a service on a node it should never have run on."""
    node.sh(f"docker ps -aq --filter label=com.docker.swarm.service.name={service} | xargs -r docker rm -f; "
            f"docker volume rm -f {service} >/dev/null 2>&1 || true", check=False)


# -- 1. doctor --fix on a remote target -------------------------------------------------------

def test_doctor_fix_brings_back_network_and_containers_on_a_remote_target(paas, remote_node):
    import redis

    add_tls_target(paas, remote_node, "fixme")
    ok(paas("env", "create", "fix-env", "--target", "fixme"))
    node = remote_node.node
    try:
        ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "fix-env", "--image", REDIS_IMAGE))
        ok(paas("svc", "add", "queue", "--template", "redis-7", "--env", "fix-env", "--image", REDIS_IMAGE))
        dsn = ok(paas("svc", "dsn", "cache", "--env", "fix-env")).stdout.strip()
        redis.Redis.from_url(dsn).set("kept", "across the fix")
        cache, queue = shown(paas, "cache", "fix-env")["container"], shown(paas, "queue", "fix-env")["container"]

        # On the remote engine: one container stopped, the other removed, the network gone.
        node.sh(f"docker stop -t 1 {cache} && docker rm -f {queue} && docker network rm paas-apps")
        code, found = findings(paas)
        remote = {(f["check"], f["ok"]): f for f in found if f["message"].startswith("[fixme]")}
        assert code != 0
        assert "missing" in remote[("network", False)]["message"]
        failed = {f["message"]: f["action"] for f in found if f["check"] == "container" and not f["ok"]}
        # a stopped container cannot start on a network re-created under the same name (its
        # endpoint names the old network's id): --fix makes a new one on the volume
        assert failed == {"[fixme] default/fix-env/cache: container is exited and its network paas-apps is gone": "recreate",
                          f"[fixme] default/fix-env/queue: container {queue} is missing": "repair"}, failed

        fixed = paas("doctor", "--fix")
        assert fixed.exit_code == 0, fixed.output
        assert node.sh("docker network ls -q --filter name=^paas-apps$").strip()
        running = node.sh("docker ps --format '{{.Names}}'").split()
        assert cache in running and queue in running
        assert redis.Redis.from_url(dsn).get("kept") == b"across the fix"
        queue_dsn = ok(paas("svc", "dsn", "queue", "--env", "fix-env")).stdout.strip()
        assert redis.Redis.from_url(queue_dsn).ping()
        code, found = findings(paas)
        assert code == 0 and all(f["ok"] for f in found if f["message"].startswith("[fixme]")), found
        # nothing of it on the local engine
        assert not [f for f in found if f["check"] == "orphan" and not f["ok"]]
    finally:
        for slug in ("cache", "queue"):
            paas("svc", "rm", slug, "--env", "fix-env", "--purge", "--yes", "--no-backup")
        node.sh("docker network inspect paas-apps >/dev/null 2>&1 || docker network create paas-apps", check=False)
    assert node.sh("docker ps -aq --filter label=paas.env=fix-env").strip() == ""


# -- 2. clone across targets ----------------------------------------------------------------

def test_clone_from_the_local_engine_into_an_environment_on_a_remote_target(paas, engine, remote_node):
    import redis

    add_tls_target(paas, remote_node, "clonefar")
    ok(paas("env", "create", "far-copy", "--target", "clonefar"))
    try:
        ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "development", "--image", REDIS_IMAGE))
        source_dsn = ok(paas("svc", "dsn", "cache", "--env", "development")).stdout.strip()
        redis.Redis.from_url(source_dsn).mset({f"k{n}": n for n in range(40)})

        cloned = ok(paas("svc", "clone", "cache", "--env", "development", "--to-env", "far-copy", "--json"))
        assert json.loads(cloned.stdout)["bytes"] > 0
        copy = shown(paas, "cache", "far-copy")
        assert (copy["status"], copy["target"], copy["host"]) == ("Ready", "clonefar", remote_node.node.ip)
        on_node = remote_node.node.sh(f"docker ps -q --filter name=^{copy['container']}$").split()
        assert len(on_node) == 1, "the copy runs on the remote target's engine"
        assert engine.containers.list(all=True, filters={"name": copy["container"]}) == []

        copy_dsn = ok(paas("svc", "dsn", "cache", "--env", "far-copy")).stdout.strip()
        assert f"@{remote_node.node.ip}:" in copy_dsn and copy_dsn != source_dsn
        assert redis.Redis.from_url(copy_dsn).dbsize() == 40 and redis.Redis.from_url(copy_dsn).get("k7") == b"7"
        redis.Redis.from_url(copy_dsn).set("k7", "changed in the copy")
        assert redis.Redis.from_url(source_dsn).get("k7") == b"7", "the source is untouched"

        # And back: from the remote target into a local environment, under another slug.
        ok(paas("svc", "clone", "cache", "--env", "far-copy", "--to-env", "development", "--to-slug", "back"))
        back = ok(paas("svc", "dsn", "back", "--env", "development")).stdout.strip()
        assert "@127.0.0.1:" in back and redis.Redis.from_url(back).get("k7") == b"changed in the copy"
    finally:
        paas("svc", "rm", "cache", "--env", "far-copy", "--purge", "--yes", "--no-backup")
    assert remote_node.node.sh("docker ps -aq --filter label=paas.env=far-copy").strip() == ""


def test_clone_from_a_remote_engine_into_an_environment_on_a_swarm(paas, remote_node, swarm):
    import psycopg

    add_tls_target(paas, remote_node, "single")
    add_swarm_target(paas, swarm, "many")
    ok(paas("env", "create", "one-box", "--target", "single"))
    ok(paas("env", "create", "on-swarm", "--target", "many"))
    try:
        ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "one-box", "--image", POSTGRES_IMAGE))
        source_dsn = ok(paas("svc", "dsn", "db", "--env", "one-box")).stdout.strip()
        with psycopg.connect(source_dsn) as connection:
            connection.execute("CREATE TABLE notes (body text)")
            connection.execute("INSERT INTO notes SELECT 'row ' || n FROM generate_series(1, 25) n")

        ok(paas("svc", "clone", "db", "--env", "one-box", "--to-env", "on-swarm", "--to-slug", "copy"))
        copy = shown(paas, "copy", "on-swarm")
        assert (copy["status"], copy["target"]) == ("Ready", "many") and copy["node"] in ("mgr", "wk1", "wk2")
        assert swarm.manager.sh(f"docker service ls -q --filter name={copy['container']}").strip()
        copy_dsn = ok(paas("svc", "dsn", "copy", "--env", "on-swarm")).stdout.strip()
        assert copy_dsn != source_dsn and f"@{remote_node.node.ip}:" not in copy_dsn
        with psycopg.connect(copy_dsn, connect_timeout=10) as connection:
            assert connection.execute("SELECT count(*) FROM notes").fetchone()[0] == 25
    finally:
        paas("svc", "rm", "copy", "--env", "on-swarm", "--purge", "--yes", "--no-backup")
        paas("svc", "rm", "db", "--env", "one-box", "--purge", "--yes", "--no-backup")
    assert swarm.manager.sh("docker service ls -q").strip() == ""
    assert remote_node.node.sh("docker ps -aq --filter label=paas.env=one-box").strip() == ""


# -- 3. svc repair puts back a placement changed by hand ----------------------------------------

def test_repair_puts_back_a_swarm_placement_changed_by_hand(paas, swarm):
    import psycopg

    add_swarm_target(paas, swarm, "placed")
    ok(paas("env", "create", "placed-env", "--target", "placed"))
    service = None
    try:
        ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "placed-env", "--image", POSTGRES_IMAGE,
                "--node", "wk1"))
        service = shown(paas, "db", "placed-env")["container"]
        dsn = ok(paas("svc", "dsn", "db", "--env", "placed-env")).stdout.strip()
        with psycopg.connect(dsn) as connection:
            connection.execute("CREATE TABLE notes (body text)")
            connection.execute("INSERT INTO notes SELECT 'row ' || n FROM generate_series(1, 30) n")

        # Someone moves it by hand: the task starts on wk2, on an empty volume there.
        swarm.manager.sh(f"docker service update --detach --constraint-rm node.hostname==wk1 "
                         f"--constraint-add node.hostname==wk2 {service}")
        assert swarm_spec(swarm, service)["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname==wk2"]
        eventually(lambda: running_on(swarm, service) == ["wk2"], "moved to wk2 by hand")
        code, found = findings(paas)
        placement = [f for f in found if f["check"] == "swarm" and not f["ok"] and "placement" in f["message"]]
        assert code != 0 and placement and "paas svc repair db --env placed-env" in placement[0]["fix"], found

        repaired = paas("svc", "repair", "db", "--env", "placed-env", "--json")
        assert repaired.exit_code == 0, repaired.output
        assert swarm_spec(swarm, service)["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname==wk1"]
        row = shown(paas, "db", "placed-env")
        assert (row["status"], row["node"]) == ("Ready", "wk1")
        with psycopg.connect(dsn, connect_timeout=10) as connection:  # wk1's volume, with its rows
            assert connection.execute("SELECT count(*) FROM notes").fetchone()[0] == 30
        assert running_on(swarm, service) == ["wk1"]
        code, found = findings(paas)
        assert not [f for f in found if f["check"] == "swarm" and not f["ok"]], found
    finally:
        paas("svc", "rm", "db", "--env", "placed-env", "--purge", "--yes", "--no-backup")
        if service:
            remove_leftovers_on(swarm.worker2, service)
    assert swarm.manager.sh("docker service ls -q").strip() == ""


# -- 4. MongoDB's password on Swarm ----------------------------------------------------------

def test_swarm_mongodb_gets_its_password_as_a_docker_secret_only(paas, swarm):
    from paas_svc.kinds.readiness import probe

    swarm.cluster.load_flat_image(STANDIN_IMAGE, [swarm.manager, swarm.worker1, swarm.worker2])
    add_swarm_target(paas, swarm, "mongo-swarm")
    ok(paas("env", "create", "docs-env", "--target", "mongo-swarm"))
    service = None
    try:
        ok(paas("svc", "add", "docs", "--template", "mongodb-7", "--env", "docs-env", "--image", STANDIN_IMAGE,
                "--node", "wk2", "--no-tls"))  # its password, not TLS (test_tls_swarm.py)
        row = shown(paas, "docs", "docs-env")
        service = row["container"]
        assert (row["status"], row["node"]) == ("Ready", "wk2")
        from urllib.parse import urlsplit

        url = urlsplit(ok(paas("svc", "dsn", "docs", "--env", "docs-env")).stdout.strip())
        user, password = url.username, url.password
        assert len(password) >= 32

        # Nowhere in what `docker service inspect` shows: env, labels, args, mounts.
        inspected = swarm.manager.sh(f"docker service inspect {service}")
        assert password not in inspected
        spec = json.loads(inspected)[0]["Spec"]
        container = spec["TaskTemplate"]["ContainerSpec"]
        secret_name = f"{service}-mongo-initdb-root-password"
        assert f"MONGO_INITDB_ROOT_PASSWORD_FILE=/run/secrets/{secret_name}" in container["Env"]
        assert not any(v.startswith("MONGO_INITDB_ROOT_PASSWORD=") for v in container["Env"])
        assert [s["SecretName"] for s in container["Secrets"]] == [secret_name]
        assert password not in json.dumps(swarm.manager.sh(f"docker secret inspect {secret_name}"))
        # ... nor in the task container's config on its node (env, labels, args).
        task = swarm.worker2.sh(f"docker ps -q --filter label=com.docker.swarm.service.name={service}").strip()
        assert task and password not in swarm.worker2.sh(f"docker inspect {task}")

        # The server started with it: it holds that root user, and takes only that password.
        assert swarm.worker2.sh(f"docker exec {task} cat /run/secrets/{secret_name}") == password
        logs = swarm.worker2.sh(f"docker logs {task} 2>&1")
        assert f"SCRAM-SHA-256 login required for root user '{user}'" in logs, logs
        host, port = url.hostname, url.port
        assert host == swarm.worker2.ip
        mongo = {"probe": "mongodb"}
        assert probe(mongo, host, port, {"user": user, "password": password}) == (True, "authenticated ping answered ok")
        assert probe(mongo, host, port, {"user": user, "password": password + "x"}) == (False, "Authentication failed.")
    finally:
        paas("svc", "rm", "docs", "--env", "docs-env", "--purge", "--yes", "--no-backup")
    assert swarm.manager.sh("docker service ls -q").strip() == ""
    if service:
        assert swarm.manager.sh(f"docker secret ls -q --filter name={service}").strip() == ""


# -- 5. doctor on a drained node -------------------------------------------------------------

def test_doctor_reports_a_drained_node_holding_a_service(paas, swarm):
    add_swarm_target(paas, swarm, "drainy")
    ok(paas("env", "create", "drain-env", "--target", "drainy"))
    try:
        ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "drain-env", "--image", POSTGRES_IMAGE,
                "--node", "wk2"))
        code, found = findings(paas)
        assert code == 0, found
        swarm.manager.sh("docker node update --availability drain wk2")
        try:
            eventually(lambda: shown(paas, "db", "drain-env")["status"] == "Pending", "Pending on a drained node")
            code, found = findings(paas)
            drained = [f for f in found if f["check"] == "swarm" and not f["ok"] and "wk2" in f["message"]]
            assert code == 9 and drained, found
            assert drained[0]["message"].startswith("[drainy]") and "drain" in drained[0]["message"]
            assert "docker node update --availability active wk2" in drained[0]["fix"], drained
            text = paas("doctor")
            assert text.exit_code == 9 and "drain" in text.stdout and "--availability active wk2" in text.stdout
        finally:
            swarm.manager.sh("docker node update --availability active wk2")
        eventually(lambda: shown(paas, "db", "drain-env")["status"] == "Ready", "Ready once wk2 is active again")
        code, found = findings(paas)
        assert code == 0, found
    finally:
        paas("svc", "rm", "db", "--env", "drain-env", "--purge", "--yes", "--no-backup")
    assert swarm.manager.sh("docker service ls -q").strip() == ""
    assert "Drain" not in swarm.manager.sh("docker node ls --format '{{.Availability}}'")
