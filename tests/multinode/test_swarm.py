"""A real three-node Swarm (one manager, two workers: Docker engines in containers on a bridge
network made here, TLS with certificates made here). PostgreSQL pinned to a worker keeps its
rows through a task restart, a lost node (Pending, never rescheduled), a move to the other
worker, and a backup/restore round trip; an app container on another node reaches it by the
network view. The Swarm (fixture `swarm`, tests/multinode/conftest.py) is shared by every
multinode test of the run and removed at its end."""

from __future__ import annotations

import json
import time

from tests.support.cli import ok
from tests.support.images import POSTGRES_IMAGE
from tests.support.nodes import Swarm, docker
from tests.support.polling import eventually


def status(paas, slug: str) -> dict:
    return json.loads(ok(paas("svc", "show", slug, "--json")).stdout)


def count_rows(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=10) as connection:
        return connection.execute("SELECT count(*) FROM notes").fetchone()[0]


def running_nodes(swarm: Swarm, service: str) -> list[str]:
    """Nodes where a task of the service is running, as the manager sees it."""
    out = swarm.manager.sh(f"docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}'")
    return [line.split()[0] for line in out.splitlines() if " Running" in f" {line.split(' ', 1)[1]}"]


def test_postgres_pinned_to_a_worker_keeps_its_rows_through_restart_node_loss_move_and_restore(paas, paas_process, swarm, tmp_path):
    certs = swarm.cluster.certs
    added = ok(paas("target", "add", "cluster", "--docker-host", swarm.manager.url, "--publish-address", swarm.manager.ip,
                    "--tls-ca", str(certs.ca_file), "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
                    "--json"))
    assert json.loads(added.stdout)["kind"] == "swarm"
    ok(paas("env", "create", "prod", "--target", "cluster"))
    ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "prod", "--image", POSTGRES_IMAGE, "--node", "wk1",
            "--no-tls"))  # its app containers on other nodes have no CA file: TLS on Swarm is test_tls_swarm.py
    shown = status(paas, "db")
    assert (shown["status"], shown["node"], shown["host"]) == ("Ready", "wk1", swarm.worker1.ip)
    service = shown["container"]
    spec = json.loads(swarm.manager.sh(f"docker service inspect {service}"))[0]["Spec"]
    assert spec["TaskTemplate"]["Placement"]["Constraints"] == ["node.hostname==wk1"]
    assert spec["EndpointSpec"]["Mode"] == "dnsrr" and spec["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "any" and spec["UpdateConfig"]["Order"] == "stop-first"
    environment = spec["TaskTemplate"]["ContainerSpec"]["Env"]
    assert not any(v.startswith("POSTGRES_PASSWORD=") for v in environment), "the password is a Docker secret"
    assert any(v.startswith("POSTGRES_PASSWORD_FILE=/run/secrets/") for v in environment)

    dsn = ok(paas("svc", "dsn", "db")).stdout.strip()
    assert f"@{swarm.worker1.ip}:" in dsn
    import psycopg

    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TABLE notes (body text)")
        connection.execute("INSERT INTO notes SELECT 'row ' || n FROM generate_series(1, 50) n")

    # The task dies: Swarm restarts it on the same node, on the same volume.
    first = swarm.worker1.sh(f"docker ps -q --filter label=com.docker.swarm.service.name={service}").strip()
    swarm.worker1.sh(f"docker kill {first}")
    eventually(lambda: (swarm.worker1.sh(f"docker ps -q --filter label=com.docker.swarm.service.name={service}").strip()
                        not in ("", first)) and status(paas, "db")["status"] == "Ready", "restarted")
    eventually(lambda: _rows_or_none(dsn) == 50, "answering with its rows after the restart", 60)

    # An app container on the OTHER worker reaches it by the network view (overlay + dnsrr).
    network_dsn = ok(paas("svc", "dsn", "db", "--network")).stdout.strip()
    assert f"@{service}:5432/" in network_dsn
    counted = swarm.worker2.sh(f"docker run --rm --network paas-apps --entrypoint psql {POSTGRES_IMAGE} '{network_dsn}' -tAc 'SELECT count(*) FROM notes'")
    assert counted.strip() == "50"

    # Its node is lost: Pending, and never started elsewhere on an empty volume.
    docker("stop", "-t", "2", swarm.worker1.name)
    try:
        eventually(lambda: status(paas, "db")["status"] == "Pending", "Pending")
        listed = json.loads(ok(paas("svc", "list", "--json")).stdout)
        assert listed[0]["status"] == "Pending"
        report = paas("doctor")
        assert report.exit_code == 9 and "wk1" in report.stdout and "down" in report.stdout, report.output
        time.sleep(5)  # give the orchestrator the chance to do the wrong thing
        assert not [n for n in running_nodes(swarm, service) if n != "wk1"], "rescheduled onto another node"
    finally:
        docker("start", swarm.worker1.name)
    eventually(lambda: status(paas, "db")["status"] == "Ready", "Ready again once its node is back")
    eventually(lambda: _rows_or_none(dsn) == 50, "its rows back with its node", 90)

    # Moved to the other worker WITH its data; the old volume is removed from wk1.
    moved = ok(paas("svc", "move", "db", "--node", "wk2", "--json"))
    assert json.loads(moved.stdout)["to"] == "wk2"
    shown = status(paas, "db")
    assert (shown["status"], shown["node"], shown["host"]) == ("Ready", "wk2", swarm.worker2.ip)
    new_dsn = ok(paas("svc", "dsn", "db")).stdout.strip()
    assert f"@{swarm.worker2.ip}:" in new_dsn and count_rows(new_dsn) == 50
    assert swarm.worker1.sh(f"docker volume ls -q --filter name={service}").strip() == ""

    # Backup and restore round trip on the Swarm service (exec through wk2's engine).
    backup = tmp_path / "db.pgdump"
    ok(paas("svc", "backup", "db", "-o", str(backup)))
    with psycopg.connect(new_dsn) as connection:
        connection.execute("DELETE FROM notes WHERE body <> 'row 1'")
    ok(paas("svc", "restore", "db", str(backup), "--yes"))
    assert count_rows(new_dsn) == 50
    logs = paas_process("svc", "logs", "db", "--tail", "3")
    assert logs.exit_code == 0 and logs.stdout, logs.output

    ok(paas("doctor"))
    ok(paas("svc", "rm", "db", "--purge", "--yes", "--no-backup"))
    assert swarm.manager.sh("docker service ls -q").strip() == ""
    assert swarm.manager.sh(f"docker secret ls -q --filter name={service}").strip() == ""
    eventually(lambda: swarm.worker2.sh(f"docker volume ls -q --filter name={service}").strip() == "", "volume gone", 60)


def _rows_or_none(dsn: str):
    try:
        return count_rows(dsn)
    except Exception:  # noqa: BLE001 - not answering yet
        return None
