"""TLS on a Swarm target (issue 22): a service gets TLS by default (it is published on its
node's address); its certificates are Docker configs and its key a Docker secret mounted at
/paas-tls, never in the service's spec as text. psycopg verify-full against the node's
address with the profile's CA; plaintext refused; a renewal makes new configs and secrets
(rolling restart) and drops the old; `svc rm` leaves none behind. A plaintext Redis turned to
TLS by `svc update --tls required` answers redis-py over rediss://. Shares the session `swarm`."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
import redis

from tests.support.cli import ok
from tests.support.images import POSTGRES_IMAGE, REDIS_IMAGE

FILES_LABEL = "paas.files-of"


def tls_objects(swarm, service: str) -> list[str]:
    """Names of the Docker configs and secrets holding the service's files."""
    found = []
    for kind in ("config", "secret"):
        listed = swarm.manager.sh(f"docker {kind} ls --filter label={FILES_LABEL}={service} --format '{{{{.Name}}}}'")
        found += [f"{kind}:{line}" for line in listed.split()]
    return sorted(found)


def test_tls_postgres_on_the_swarm_verified_renewed_and_removed_without_leftovers(paas, swarm):
    certs = swarm.cluster.certs
    ok(paas("target", "add", "tlsswarm", "--docker-host", swarm.manager.url, "--publish-address", swarm.manager.ip,
            "--tls-ca", str(certs.ca_file), "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file)))
    ok(paas("env", "create", "sw", "--target", "tlsswarm"))
    ok(paas("svc", "add", "db", "--template", "postgres-16", "--env", "sw", "--image", POSTGRES_IMAGE, "--node", "wk2"))
    shown = json.loads(ok(paas("svc", "show", "db", "--env", "sw", "--json")).stdout)
    service = shown["container"]
    try:
        assert shown["tls"] == "required" and shown["tls_not_after"], shown  # the default on a Swarm
        url = json.loads(ok(paas("env", "export", "--env", "sw", "--format", "json")).stdout)["DB_URL"]
        assert "sslmode=verify-full" in url and f"@{swarm.worker2.ip}:" in url
        with psycopg.connect(url, connect_timeout=10) as conn:  # verify-full: the CA and the node's address
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
            conn.execute("CREATE TABLE notes (body text)")
            conn.execute("INSERT INTO notes VALUES ('kept')")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url.split("?", 1)[0] + "?sslmode=disable", connect_timeout=10).close()

        inspected = swarm.manager.sh(f"docker service inspect {service}")
        assert "PRIVATE KEY" not in inspected
        container = json.loads(inspected)[0]["Spec"]["TaskTemplate"]["ContainerSpec"]
        [key] = [s for s in container["Secrets"] if s["File"]["Name"] == "/paas-tls/server.key"]
        assert key["File"]["Mode"] == 0o600 and key["File"]["UID"] != "0"
        assert sorted(c["File"]["Name"] for c in container["Configs"]) == [
            "/paas-tls/ca.crt", "/paas-tls/pg_hba.conf", "/paas-tls/server.crt"]
        first = tls_objects(swarm, service)
        task = swarm.worker2.sh(f"docker ps -q --filter label=com.docker.swarm.service.name={service}").strip()
        first_served = swarm.worker2.sh(f"docker exec {task} cat /paas-tls/server.crt")
        assert len(first) == 4, first

        # The host timer's run-due renews it: new configs and secret, the old ones gone, rows kept.
        started = time.monotonic()
        renewed = json.loads(ok(paas("backup", "run-due", "--json", "--now", "2099-01-01T00:00:00Z")).stdout)
        print(f"swarm renewal (new configs and secret, rolling update, ready again): {time.monotonic() - started:.1f}s")
        assert [(r["where"], r["reloaded"], r["error"]) for r in renewed["tls_renewed"]] == [("default/sw/db", False, None)]
        task = swarm.worker2.sh(f"docker ps -q --filter label=com.docker.swarm.service.name={service}").strip()
        served = swarm.worker2.sh(f"docker exec {task} cat /paas-tls/server.crt")
        assert served.startswith("-----BEGIN CERTIFICATE-----") and served != first_served  # the task runs the new files
        after = tls_objects(swarm, service)
        assert len(after) == 4 and not set(after) & set(first), (first, after)
        assert json.loads(ok(paas("svc", "show", "db", "--env", "sw", "--json")).stdout)["tls_not_after"] > shown["tls_not_after"]
        with psycopg.connect(url, connect_timeout=10) as conn:
            assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]

        # Redis: plaintext (--no-tls), then `svc update --tls required`; and back off: no files left.
        swarm.cluster.load_flat_image(REDIS_IMAGE, [swarm.manager, swarm.worker1, swarm.worker2])
        ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "sw", "--image", REDIS_IMAGE, "--node", "wk1", "--no-tls"))
        cache = json.loads(ok(paas("svc", "show", "cache", "--env", "sw", "--json")).stdout)["container"]
        assert ok(paas("svc", "dsn", "cache", "--env", "sw")).stdout.startswith("redis://")
        ok(paas("svc", "update", "cache", "--env", "sw", "--tls", "required"))
        variables = json.loads(ok(paas("env", "export", "--env", "sw", "--format", "json")).stdout)
        assert variables["CACHE_URL"].startswith("rediss://") and f"@{swarm.worker1.ip}:" in variables["CACHE_URL"]
        assert redis.Redis.from_url(variables["CACHE_URL"], socket_timeout=10).ping()
        with pytest.raises(redis.exceptions.ConnectionError):
            redis.Redis(host=swarm.worker1.ip, port=int(variables["CACHE_PORT"]), password=variables["CACHE_PASSWORD"],
                        socket_timeout=5).ping()
        assert len(tls_objects(swarm, cache)) == 3
        ok(paas("svc", "update", "cache", "--env", "sw", "--tls", "off"))
        assert tls_objects(swarm, cache) == []
        assert redis.Redis(host=swarm.worker1.ip, port=int(variables["CACHE_PORT"]), password=variables["CACHE_PASSWORD"],
                           socket_timeout=10).ping()
    finally:
        for slug in ("db", "cache"):
            paas("svc", "rm", slug, "--env", "sw", "--purge", "--yes", "--no-backup")
    assert tls_objects(swarm, service) == []
    assert service not in swarm.manager.sh("docker secret ls --format '{{.Name}}'")
