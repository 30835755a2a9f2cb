"""Remote targets on a real second engine: a Docker engine in a container on a bridge network
made by the test, reached over tcp with TLS (certificates made here) and over ssh (sshd in
that container, a key made here). Real clients (redis-py, psycopg) connect to the node's
address. The node (fixture `remote_node`, tests/multinode/conftest.py) is shared by every
multinode test of the run and removed at its end."""

from __future__ import annotations

import json
import sqlite3
import stat
import time

from tests.support.cli import ok
from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE
from tests.support.nodes import add_ssh_target, add_tls_target


def listed(paas, *args) -> dict:
    return {row["slug"]: row for row in json.loads(ok(paas("svc", "list", "--json", *args)).stdout)}


def test_tls_target_redis_add_dsn_backup_restore_doctor_rm(paas, remote_node, isolated_home, tmp_path):
    import redis

    added = add_tls_target(paas, remote_node)
    assert "reachable from that network" not in added.stdout and "warning" in added.stderr  # non-loopback publish
    folder = isolated_home / "targets" / "prod"
    assert sorted(p.name for p in folder.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    shown = ok(paas("target", "show", "prod", "--json")).stdout
    assert "PRIVATE KEY" not in shown and json.loads(shown)["tls"] is True and json.loads(shown)["kind"] == "engine"

    ok(paas("env", "create", "live", "--target", "prod"))
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "live", "--image", REDIS_IMAGE))
    dsn = ok(paas("svc", "dsn", "cache")).stdout.strip()
    assert f"@{remote_node.node.ip}:" in dsn
    client = redis.Redis.from_url(dsn)
    client.set("greeting", "hello from afar")
    row = listed(paas)["cache"]
    assert (row["status"], row["target"], row["host"]) == ("Ready", "prod", remote_node.node.ip)

    backup = tmp_path / "cache.rdb"
    ok(paas("svc", "backup", "cache", "-o", str(backup)))
    client.set("greeting", "changed")
    ok(paas("svc", "restore", "cache", str(backup), "--yes"))
    assert redis.Redis.from_url(dsn).get("greeting") == b"hello from afar"

    report = paas("doctor", "--json")
    findings = json.loads(report.stdout)
    remote = [f for f in findings["findings"] if f["message"].startswith("[prod]")] if isinstance(findings, dict) else \
        [f for f in findings if f["message"].startswith("[prod]")]
    assert {f["check"] for f in remote} >= {"engine", "network", "container", "orphan", "clock"}, report.output
    assert all(f["ok"] for f in remote), report.output

    refused = paas("target", "rm", "prod")
    assert refused.exit_code == 4 and "cache" in refused.stderr
    assert paas("env", "set-target", "live", "local").exit_code == 4  # it has services
    ok(paas("svc", "rm", "cache", "--purge", "--yes", "--no-backup"))
    ok(paas("env", "set-target", "live", "local"))
    ok(paas("target", "rm", "prod"))
    assert not folder.exists()
    gone = remote_node.node.sh("docker ps -aq --filter label=paas.slug=cache; docker volume ls -q --filter label=paas.slug=cache")
    assert gone.strip() == ""


def test_ssh_target_postgres_rows_survive_backup_and_restore(paas, paas_process, remote_node, tmp_path):
    import psycopg

    add_ssh_target(paas, remote_node, publish=remote_node.node.ip)
    ok(paas("env", "create", "edge", "--target", "box"))
    ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "edge", "--image", POSTGRES_IMAGE))
    dsn = ok(paas("svc", "dsn", "db")).stdout.strip()
    assert f"@{remote_node.node.ip}:" in dsn
    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TABLE notes (body text)")
        connection.execute("INSERT INTO notes SELECT 'row ' || n FROM generate_series(1, 100) n")
    backup = tmp_path / "db.pgdump"
    ok(paas("svc", "backup", "db", "-o", str(backup)))
    with psycopg.connect(dsn) as connection:
        connection.execute("DELETE FROM notes")
    ok(paas("svc", "restore", "db", str(backup), "--yes"))
    with psycopg.connect(dsn) as connection:
        assert connection.execute("SELECT count(*) FROM notes").fetchone()[0] == 100
    logs = paas_process("svc", "logs", "db", "--tail", "5")
    assert logs.exit_code == 0 and logs.stdout, logs.output
    ok(paas("svc", "rm", "db", "--purge", "--yes", "--no-backup"))


def test_tunnel_reaches_a_loopback_only_service(paas, remote_node):
    import redis

    from paas_svc.cli.state import open_profile
    from paas_svc.usecases.tunnel import open_tunnel

    add_ssh_target(paas, remote_node, name="hidden")  # publishes on the node's 127.0.0.1 only
    ok(paas("env", "create", "dev2", "--target", "hidden"))
    ok(paas("svc", "add", "jobs", "--template", "redis-7", "--env", "dev2", "--image", REDIS_IMAGE))
    published = remote_node.node.sh("docker ps --filter label=paas.slug=jobs --format '{{.Ports}}'")
    assert published.startswith("127.0.0.1:"), published
    profile = open_profile()
    tunnel = open_tunnel(profile.store, profile.vault, profile.home, profile.store.get_service("default", "dev2", "jobs"))
    try:
        assert f"@127.0.0.1:{tunnel.local_port}/" in tunnel.dsn
        assert redis.Redis.from_url(tunnel.dsn).ping()
    finally:
        tunnel.close()
        profile.store.close()
    ok(paas("svc", "rm", "jobs", "--purge", "--yes", "--no-backup"))


def test_a_target_that_stops_answering_shows_unreachable_without_failing_the_rest(paas, engine, remote_node, isolated_home):
    add_tls_target(paas, remote_node, "far")
    ok(paas("env", "create", "far-env", "--target", "far"))
    ok(paas("svc", "add", "near", "--template", "redis-7", "--env", "development", "--image", REDIS_IMAGE))
    ok(paas("svc", "add", "remote", "--template", "redis-7", "--env", "far-env", "--image", REDIS_IMAGE))
    assert {slug: row["status"] for slug, row in listed(paas).items()} == {"near": "Ready", "remote": "Ready"}
    with sqlite3.connect(isolated_home / "state.db") as db:  # the engine moves away: nothing listens there any more
        db.execute("UPDATE targets SET docker_host = ? WHERE name = 'far'", (f"tcp://{remote_node.node.ip}:1",))
    rows = listed(paas)
    assert (rows["near"]["status"], rows["remote"]["status"]) == ("Ready", "Unreachable")
    exported = paas("env", "export", "--env", "development")
    assert exported.exit_code == 0 and exported.stdout.startswith("NEAR_URL="), exported.output
    with sqlite3.connect(isolated_home / "state.db") as db:
        db.execute("UPDATE targets SET docker_host = ? WHERE name = 'far'", (remote_node.node.url,))
    ok(paas("svc", "rm", "remote", "--purge", "--yes", "--no-backup"))


def test_run_due_and_verify_of_a_remote_service_use_its_target_engine(paas, engine, remote_node, isolated_home):
    """A schedule on a service of a remote target: run-due backs it up from that engine, and the
    verify's throwaway container runs there too (the local engine never sees one)."""
    import time

    import redis

    add_tls_target(paas, remote_node, "vaulted")
    ok(paas("env", "create", "far-live", "--target", "vaulted"))
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "far-live", "--image", REDIS_IMAGE))
    dsn = ok(paas("svc", "dsn", "cache")).stdout.strip()
    redis.Redis.from_url(dsn).mset({f"far{n}": n for n in range(25)})
    since = int(time.time()) - 5
    ok(paas("backup", "schedule", "cache", "--every", "hourly", "--verify", "--now", "2026-11-26T10:00:00Z"))
    ran = json.loads(ok(paas("backup", "run-due", "--now", "2026-11-26T11:00:01Z", "--json")).stdout)
    [item] = ran["backups"]
    assert item["ok"] and item["verified"] and item["verify_detail"] == "restored and ready; 25 keys", item
    until = int(time.time()) + 1
    events = remote_node.node.sh(f"docker events --since {since} --until {until} --filter label=paas.purpose=verify "
                                 "--filter type=container --format '{{.Action}}'")
    assert "create" in events.split() and "destroy" in events.split(), events
    from tests.support.engine import profile_id

    # This profile's only: the engine tier, run beside this one (make test), verifies on this engine too.
    local = engine.containers.list(all=True, filters={"label": ["paas.purpose=verify", f"paas.profile={profile_id(isolated_home)}"]})
    assert local == []

    redis.Redis.from_url(dsn).flushall()
    ok(paas("svc", "restore", "cache", "--latest", "--yes"))
    assert redis.Redis.from_url(dsn).dbsize() == 25
    ok(paas("backup", "schedule", "rm", "cache"))
    ok(paas("svc", "rm", "cache", "--purge", "--yes", "--no-backup"))


def test_api_provisions_shows_reveals_and_removes_on_the_environments_target(paas, docker_client, remote_node, isolated_home):
    """`paas serve` is target-aware: an add into an environment bound to a remote target runs
    there, the service reads as that target's, its DSN names the target's address, start/stop/
    remove reach that engine, and a target that stops answering shows Unreachable without
    failing the local services of the same list."""
    import httpx
    import redis

    from tests.support.api_server import Server, wait_for_status

    add_tls_target(paas, remote_node, "api-far")
    ok(paas("env", "create", "api-live", "--target", "api-far"))
    server = Server(isolated_home).start()
    try:
        headers = {"Authorization": f"Bearer {server.token('ops', 'admin')}"}
        with httpx.Client(headers=headers, timeout=60) as client:
            remote_url = server.scope("api-live") + "/services/"
            local_url = server.scope("production") + "/services/"
            created = client.post(remote_url, json={"slug": "farcache", "templateKey": "redis-7"})
            assert created.status_code == 202, created.text
            assert (created.json()["target"], created.json()["host"]) == ("api-far", remote_node.node.ip)
            assert client.post(local_url, json={"slug": "nearcache", "templateKey": "redis-7"}).status_code == 202
            assert wait_for_status(client, remote_url + "farcache", {"Ready", "Failed"})["status"] == "Ready"
            assert wait_for_status(client, local_url + "nearcache", {"Ready", "Failed"})["status"] == "Ready"

            on_node = remote_node.node.sh("docker ps -q --filter label=paas.slug=farcache").split()
            assert len(on_node) == 1, "the container runs on the target's engine"
            assert docker_client.containers.list(all=True, filters={"label": "paas.slug=farcache"}) == []

            dsn = client.get(remote_url + "farcache/dsn").json()["dsn"]
            assert f"@{remote_node.node.ip}:" in dsn
            redis.Redis.from_url(dsn).set("k", "v")

            stopped = client.post(remote_url + "farcache/stop")
            assert stopped.status_code == 200 and stopped.json()["status"] == "Stopped", stopped.text
            assert remote_node.node.sh("docker ps -q --filter label=paas.slug=farcache").strip() == ""
            started = client.post(remote_url + "farcache/start")
            assert started.status_code == 200 and started.json()["status"] == "Ready", started.text
            assert redis.Redis.from_url(dsn).get("k") == b"v"

            with sqlite3.connect(isolated_home / "state.db") as db:  # the engine moves away
                db.execute("UPDATE targets SET docker_host = ? WHERE name = 'api-far'", (f"tcp://{remote_node.node.ip}:1",))
            deadline = time.monotonic() + 10  # the server's status cache lives half a second
            while (remote_rows := client.get(remote_url).json())[0]["status"] == "Ready" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert [(s["slug"], s["status"]) for s in remote_rows] == [("farcache", "Unreachable")]
            assert [(s["slug"], s["status"]) for s in client.get(local_url).json()] == [("nearcache", "Ready")]
            with sqlite3.connect(isolated_home / "state.db") as db:
                db.execute("UPDATE targets SET docker_host = ? WHERE name = 'api-far'", (remote_node.node.url,))

            removed = client.delete(remote_url + "farcache")
            assert removed.status_code == 200 and removed.json()["status"] == "Removed", removed.text
            assert remote_node.node.sh("docker ps -aq --filter label=paas.slug=farcache").strip() == ""
    finally:
        server.stop()
    ok(paas("svc", "rm", "farcache", "--env", "api-live", "--purge", "--yes", "--no-backup"))
    ok(paas("svc", "rm", "nearcache", "--env", "production", "--purge", "--yes", "--no-backup"))


def test_a_minio_service_on_a_remote_target_holds_local_backups(paas, engine, remote_node, isolated_home):
    """`backup dest add --from-service` with a MinIO on another machine's target: the endpoint is
    that target's publish address (not this host's loopback), so the backups leave this host."""
    import boto3
    import redis

    from tests.support.images import MINIO_IMAGE

    remote_node.cluster.load_flat_image(MINIO_IMAGE, [remote_node.node])
    add_tls_target(paas, remote_node, "offsite")
    ok(paas("env", "create", "vault-env", "--target", "offsite"))
    ok(paas("svc", "add", "store", "--template", "minio", "--env", "vault-env", "--image", MINIO_IMAGE))
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE))
    url = ok(paas("svc", "dsn", "cache", "--env", "production")).stdout.strip()
    redis.Redis.from_url(url).mset({f"near{n}": n for n in range(12)})

    ok(paas("backup", "dest", "add", "far", "--s3", "s3://far-backups/p", "--from-service", "store", "--env", "vault-env",
            "--create-bucket"))
    taken = json.loads(ok(paas("backup", "now", "cache", "--env", "production", "--to", "far", "--json")).stdout)
    assert taken["encrypted"] and taken["location"].startswith("s3://far-backups/p/default/production/cache/")
    port = json.loads(ok(paas("svc", "show", "store", "--env", "vault-env", "--json")).stdout)["host_port"]
    # TLS is the default on a target that publishes off loopback: HTTPS, verified with the profile's CA.
    s3 = boto3.client("s3", endpoint_url=f"https://{remote_node.node.ip}:{port}", region_name="us-east-1",
                      aws_access_key_id="any", aws_secret_access_key="any", verify=str(isolated_home / "tls" / "ca.crt"))
    [stored] = s3.list_objects_v2(Bucket="far-backups", Prefix="p/")["Contents"]
    assert taken["location"] == f"s3://far-backups/{stored['Key']}" and stored["Size"] == taken["size_bytes"]

    redis.Redis.from_url(url).flushall()
    ok(paas("svc", "restore", "cache", "--env", "production", "--from", "far", "--latest", "--yes"))
    assert redis.Redis.from_url(url).dbsize() == 12
    ok(paas("backup", "dest", "rm", "far"))
    ok(paas("svc", "rm", "store", "--env", "vault-env", "--purge", "--yes", "--no-backup"))
