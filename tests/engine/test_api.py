"""`paas serve` for real: a server process on 127.0.0.1, a real HTTP client (httpx), the real
engine with the Redis stand-in, real SQLite. Every bad request gets a 4xx JSON error."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass

import httpx
import pytest
import redis

from tests.support.api_server import Server, free_port, wait_for_status
from tests.support.engine import profile_id, sweep


@dataclass
class Api:
    server: Server
    admin: httpx.Client
    member: httpx.Client
    anonymous: httpx.Client
    admin_token: str
    member_token: str

    def scope(self, env="production"):
        return self.server.scope(env)


@pytest.fixture(scope="module")
def api(docker_client, tmp_path_factory):
    home = tmp_path_factory.mktemp("api") / "paas-home"
    server = Server(home).start()
    admin_token, member_token = server.token("alice", "admin"), server.token("bob", "member")
    clients = [httpx.Client(headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=60)
               for token in (admin_token, member_token, None)]
    try:
        yield Api(server, *clients, admin_token, member_token)
    finally:
        for client in clients:
            client.close()
        server.stop()
        profile = profile_id(home)
        if profile:
            sweep(docker_client, f"paas.profile={profile}")


def audit(api) -> list[dict]:
    result = api.server.paas("audit", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "message"} and "Traceback" not in response.text
    if code:
        assert body["error"] == code, body
    return body


# -- the product description's flow -------------------------------------------------------------

def test_add_answers_provisioning_then_becomes_ready_and_admin_reveals_it(api):
    created = api.member.post(api.scope() + "/services/", json={"slug": "cache", "templateKey": "redis-7"})
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "Provisioning" and created.json()["envVar"] == "CACHE_URL"

    ready = wait_for_status(api.member, api.scope() + "/services/cache", {"Ready", "Failed"})
    assert ready["status"] == "Ready", ready
    listed = api.member.get(api.scope() + "/services/").json()
    assert [(s["slug"], s["status"]) for s in listed] == [("cache", "Ready")]

    # the CLI sees the same service (same state, same engine)
    shown = api.server.paas("svc", "list", "--json", "--env", "production")
    assert [(s["slug"], s["status"]) for s in json.loads(shown.stdout)] == [("cache", "Ready")]

    forbidden = api.member.get(api.scope() + "/services/cache/dsn")
    assert_json_error(forbidden, 403, "forbidden")
    revealed = api.admin.get(api.scope() + "/services/cache/dsn")
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["envVar"] == "CACHE_URL"
    dsn = revealed.json()["dsn"]
    assert dsn == api.server.paas("svc", "dsn", "cache", "--env", "production").stdout.strip()
    client = redis.Redis.from_url(dsn)
    client.set("k", "v")
    assert client.get("k") == b"v"

    variables = api.admin.get(api.scope() + "/variables").json()
    assert variables["skipped"] == [] and variables["variables"]["CACHE_URL"] == dsn  # and what clients of its kind read:
    assert set(variables["variables"]) == {"CACHE_URL", "CACHE_HOST", "CACHE_PORT", "CACHE_USER", "CACHE_PASSWORD"}
    assert_json_error(api.member.get(api.scope() + "/variables"), 403)
    network = api.admin.get(api.scope() + "/variables?view=network").json()
    assert f"@{ready['container']}:" in network["variables"]["CACHE_URL"], network
    assert_json_error(api.admin.get(api.scope() + "/variables?view=side"), 400, "invalid_query")

    entries = audit(api)
    reveals = [e["detail"] for e in entries if e["action"] == "reveal-dsn"]
    assert reveals == ["view=host via=api token=alice", "view=host"]  # the API's, then the CLI's
    exports = [e["detail"] for e in entries if e["action"] == "reveal-env"]
    assert exports == ["view=host via=api token=alice", "view=network via=api token=alice"], exports
    denied = [e for e in entries if e["action"] == "api-denied" and "token=bob" in e["detail"]]
    assert denied and "status=403" in denied[0]["detail"] and denied[0]["slug"] == "cache"
    for secret in (api.admin_token, api.member_token, dsn.split(":")[2].split("@")[0]):
        assert secret not in json.dumps(entries)


def test_stop_start_backup_and_delete_keeps_the_volume(api, docker_client):
    assert api.member.post(api.scope("staging") + "/services/", json={"slug": "jobs", "templateKey": "redis-7"}).status_code == 202
    service = wait_for_status(api.member, api.scope("staging") + "/services/jobs", {"Ready", "Failed"})
    assert service["status"] == "Ready", service

    stopped = api.member.post(api.scope("staging") + "/services/jobs/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "Stopped", stopped.text
    started = api.member.post(api.scope("staging") + "/services/jobs/start")
    assert started.status_code == 200 and started.json()["status"] == "Ready", started.text

    assert_json_error(api.member.get(api.scope("staging") + "/services/jobs/backup"), 403)
    with api.admin.stream("GET", api.scope("staging") + "/services/jobs/backup") as download:
        assert download.status_code == 200
        assert "attachment" in download.headers["content-disposition"]
        payload = b"".join(download.iter_bytes())
    header = json.loads(payload.split(b"\n", 1)[0])
    assert (header["template"], header["slug"], header["env"]) == ("redis-7", "jobs", "staging")
    assert b"REDIS" in payload  # the RDB payload follows the header line
    assert not list(api.server.home.rglob("api-*")), "the staged download is deleted"

    removed = api.member.delete(api.scope("staging") + "/services/jobs")
    assert removed.status_code == 200 and removed.json()["volumeKept"] is True
    assert docker_client.volumes.get(service["volume"])
    assert not docker_client.containers.list(all=True, filters={"name": service["container"]})
    assert api.member.get(api.scope("staging") + "/services/").json() == []
    assert_json_error(api.admin.get(api.scope("staging") + "/services/jobs/dsn"), 409, "conflict")


def test_concurrent_adds_of_one_slug_make_exactly_one_service(api):
    statuses: list[int] = []

    def add() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {api.member_token}"}, timeout=60) as client:
            response = client.post(api.scope("development") + "/services/", json={"slug": "race", "templateKey": "redis-7"})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202, 409, 409, 409, 409, 409], statuses
    wait_for_status(api.member, api.scope("development") + "/services/race", {"Ready"})
    again = api.member.post(api.scope("development") + "/services/", json={"slug": "race", "templateKey": "redis-7"})
    assert_json_error(again, 409, "conflict")
    listed = [s["slug"] for s in api.member.get(api.scope("development") + "/services/").json()]
    assert listed.count("race") == 1


def test_ten_clients_adding_listing_and_revealing_at_once(api):
    """More adds than bring-up slots: every one answers 202 at once, waits its turn as
    Provisioning, and ends Ready; no 5xx anywhere."""
    assert api.server.paas("project", "create", "load").exit_code == 0
    scope = api.server.scope("staging", project="load")
    codes: list[tuple[str, int]] = []
    finals: list[tuple[str, str, str | None]] = []

    def client_run(number: int) -> None:
        slug = f"svc{number}"
        with httpx.Client(headers={"Authorization": f"Bearer {api.admin_token}"}, timeout=120) as client:
            codes.append(("add", client.post(scope + "/services/", json={"slug": slug, "templateKey": "redis-7"}).status_code))
            for _ in range(5):
                codes.append(("list", client.get(scope + "/services/").status_code))
            ready = wait_for_status(client, f"{scope}/services/{slug}", {"Ready", "Failed"})
            finals.append((slug, ready["status"], ready["statusReason"]))
            codes.append(("reveal", client.get(f"{scope}/services/{slug}/dsn").status_code))

    threads = [threading.Thread(target=client_run, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {status for _, status, _ in finals} == {"Ready"}, finals
    assert sorted(set(codes)) == [("add", 202), ("list", 200), ("reveal", 200)], codes
    assert len([c for c in codes if c[0] == "reveal"]) == 10
    listed = api.member.get(scope + "/services/").json()
    assert sorted(s["slug"] for s in listed) == sorted(f"svc{n}" for n in range(10))
    assert {s["status"] for s in listed} == {"Ready"}


def test_a_failed_provisioning_shows_failed_with_the_reason(tmp_path, docker_client):
    # postgres-16 on an image whose process exits at once; redis-7 on an image no registry has
    server = Server(tmp_path / "home", "--image", "postgres-16=paas-test/bookworm:base",
                    "--image", "redis-7=127.0.0.1:1/paas-test/nothing:1").start()
    try:
        token = server.token("ci", "member")
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            for slug, template in (("db", "postgres-16"), ("cache", "redis-7")):
                created = client.post(server.scope() + "/services/", json={"slug": slug, "templateKey": template})
                assert created.status_code == 202, created.text  # answered before the pull
            exited = wait_for_status(client, server.scope() + "/services/db", {"Ready", "Failed"})
            unpulled = wait_for_status(client, server.scope() + "/services/cache", {"Ready", "Failed"})
        assert exited["status"] == "Failed" and "exited with code" in exited["statusReason"], exited
        assert unpulled["status"] == "Failed" and "Could not pull image 127.0.0.1:1/paas-test/nothing:1" in unpulled[
            "statusReason"], unpulled
    finally:
        server.stop()
        profile = profile_id(tmp_path / "home")
        if profile:
            sweep(docker_client, f"paas.profile={profile}")


def test_a_server_killed_mid_provision_leaves_a_service_the_next_start_finishes(tmp_path, docker_client):
    home = tmp_path / "home"
    killed = Server(home, env={"PAAS_FAULT_INJECT": "after-volume"}).start()
    try:
        token = killed.token("ci", "member")
        try:
            httpx.post(killed.scope() + "/services/", json={"slug": "cache", "templateKey": "redis-7"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
        except httpx.HTTPError:
            pass  # the process may die before it answers
        assert killed.process.wait(timeout=60) == -9, killed.output()
        (row,) = json.loads(killed.paas("svc", "list", "--json", "--all").stdout)
        assert row["status"] == "Failed", row  # recorded, no process holds its lock

        restarted = Server(home, port=free_port()).start()
        try:
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
                finished = wait_for_status(client, restarted.scope() + "/services/cache", {"Ready"})
            assert finished["container"] == row["container"] and finished["volume"] == row["volume"]
            assert "Finishing 1 interrupted add(s): default/production/cache" in restarted.output()
        finally:
            restarted.stop()
    finally:
        killed.stop()
        profile = profile_id(home)
        if profile:
            sweep(docker_client, f"paas.profile={profile}")


# -- bad requests: 4xx with a JSON error, never a 500 --------------------------------------------

def test_bad_bodies_are_refused_before_anything_happens(api):
    url = api.scope() + "/services/"
    headers = {"Content-Type": "application/json"}
    cases = [
        (api.member.post(url, content=b'{"slug": "cache", ', headers=headers), 400, "malformed_json"),
        (api.member.post(url, content=b"\xff\xfe", headers=headers), 400, "malformed_json"),
        (api.member.post(url, content=b'{"slug": "a", "templateKey": "redis-7", "slug": "b"}', headers=headers), 400,
         "duplicate_key"),
        (api.member.post(url, json={"slug": "x", "templateKey": "redis-7", "image": "evil"}), 422, "invalid_body"),
        (api.member.post(url, json={"slug": "x"}), 422, "invalid_body"),
        (api.member.post(url, json=["slug", "x"]), 422, "invalid_body"),
        (api.member.post(url, json={"slug": 7, "templateKey": "redis-7"}), 422, "invalid_body"),
        (api.member.post(url, json={"slug": "..", "templateKey": "redis-7"}), 422, "invalid"),
        (api.member.post(url, json={"slug": "../etc", "templateKey": "redis-7"}), 422, "invalid"),
        (api.member.post(url, json={"slug": "café", "templateKey": "redis-7"}), 422, "invalid"),
        (api.member.post(url, json={"slug": "x" * 41, "templateKey": "redis-7"}), 422, "invalid_body"),
        (api.member.post(url, json={"slug": "cache2", "templateKey": "redis-99"}), 422, "unknown_template"),
        (api.member.post(url, json={"slug": "sec", "templateKey": "redis-7", "tls": "maybe"}), 422, "invalid_body"),
        (api.member.post(url, json={"slug": "search", "templateKey": "meilisearch-1.10", "tls": "optional"}), 422,
         "invalid"),  # Meilisearch serves HTTPS or HTTP on its port, not both
        (api.member.post(url, content=b'{"slug":"a","templateKey":"redis-7"}', headers={"Content-Type": "text/plain"}), 415, None),
        (api.member.post(url, data={"slug": "a", "templateKey": "redis-7"}), 415, None),
        (api.member.post(url, content=b"x" * (10 * 1024 * 1024), headers=headers), 413, "body_too_large"),
    ]
    for response, status, code in cases:
        body = assert_json_error(response, status, code)
        assert "Traceback" not in body["message"]
    unknown = api.member.post(url, json={"slug": "cache2", "templateKey": "redis-99"}).json()
    assert "redis-7" in unknown["hint"], unknown  # did you mean
    slugs = {s["slug"] for s in json.loads(api.server.paas("svc", "list", "--json", "--all", "--removed").stdout)}
    assert not slugs & {"x", "a", "b", "cache2", "..", "../etc", "café", "x" * 41, "sec", "search"}, slugs


def test_add_with_tls_required_hands_out_a_verified_rediss_url(api):
    created = api.member.post(api.scope() + "/services/", json={"slug": "secure", "templateKey": "redis-7", "tls": "required"})
    assert created.status_code == 202, created.text
    assert created.json()["tls"] == "required"
    ready = wait_for_status(api.member, api.scope() + "/services/secure", {"Ready", "Failed"})
    assert (ready["status"], ready["tls"]) == ("Ready", "required"), ready
    dsn = api.admin.get(api.scope() + "/services/secure/dsn").json()["dsn"]
    assert dsn.startswith("rediss://"), dsn
    ca_file = api.server.home / "tls" / "ca.crt"
    assert redis.Redis.from_url(dsn, ssl_ca_certs=str(ca_file)).ping()
    plain = "redis://" + dsn.split("://", 1)[1].split("?", 1)[0]
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(plain, socket_timeout=5).ping()  # plaintext to a required service is refused
    assert [e["detail"] for e in audit(api) if e["action"] == "api-add" and e["slug"] == "secure"] == [
        "template=redis-7 tls=required via=api token=bob"]
    assert api.admin.delete(api.scope() + "/services/secure").status_code == 200


def test_a_chunked_10_mb_body_is_refused_too(api):
    def chunks():
        for _ in range(160):
            yield b"x" * 65536

    response = api.member.post(api.scope() + "/services/", content=chunks(), headers={"Content-Type": "application/json"})
    assert_json_error(response, 413, "body_too_large")


def test_bad_paths_and_names(api):
    base = api.server.url + "/api/orgs/default/projects/default/envs"
    assert_json_error(api.member.get(base + "/production/services/%2E%2E"), 400, "invalid_path")
    assert_json_error(api.member.get(base + "/production/services/caf%C3%A9"), 400, "invalid_path")
    assert_json_error(api.member.get(base + "/production/services/ghost"), 404, "not_found")
    assert_json_error(api.member.get(base + "/nowhere/services/"), 404, "not_found")
    assert_json_error(api.member.get(api.server.url + "/api/orgs/acme/projects/default/envs/production/services/"), 404)
    assert_json_error(api.member.get(api.server.url + "/api/nothing"), 404, "no_such_endpoint")
    assert_json_error(api.member.put(base + "/production/services/"), 405, "method_not_allowed")
    assert_json_error(api.admin.get(base + "/production/services/ghost/dsn?view=side"), 404)
    assert_json_error(api.admin.get(api.scope() + "/services/cache/dsn?view=side"), 400, "invalid_query")


@pytest.mark.parametrize("authorization, code", [
    (None, "missing_token"),
    ("", "missing_token"),
    ("Basic YWxpY2U6c2VjcmV0", "malformed_authorization"),
    ("Bearer", "malformed_authorization"),
    ("Bearer a b", "malformed_authorization"),
    ("Bearer paas_thisisnotatoken", "invalid_token"),
])
def test_missing_malformed_or_wrong_tokens_get_401(api, authorization, code):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.get(api.scope() + "/services/", headers=headers)
    assert_json_error(response, 401, code)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_revoked_and_expired_tokens_get_401_and_are_audited_by_name(api):
    gone = api.server.token("gone", "admin")
    old = api.server.token("old", "admin")
    assert httpx.get(api.scope() + "/services/", headers={"Authorization": f"Bearer {gone}"}).status_code == 200
    assert api.server.paas("token", "revoke", "gone").exit_code == 0
    with sqlite3.connect(api.server.home / "state.db") as db:
        db.execute("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE name = 'old'")
    for token in (gone, old):
        assert_json_error(httpx.get(api.scope() + "/services/cache/dsn", headers={"Authorization": f"Bearer {token}"}),
                          401, "invalid_token")
    details = [e["detail"] for e in audit(api) if e["action"] == "api-denied"]
    assert any("reason=token-revoked token=gone" in d for d in details), details
    assert any("reason=token-expired token=old" in d for d in details), details
    assert gone not in json.dumps(details) and old not in json.dumps(details)


# -- OpenAPI document vs the routes the server serves --------------------------------------------

def test_openapi_document_matches_the_served_routes(api, tmp_path):
    from paas_svc.api.app import create_app
    from paas_svc.api.context import ServerContext
    from paas_svc.api.routes import SERVICE_FIELDS

    document = httpx.get(api.server.url + "/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    app = create_app(ServerContext(tmp_path))
    served = {(method, route.path) for route in app.routes for method in route.methods - {"HEAD"}
              if route.path.startswith("/api/")}
    assert documented == served

    fill = {"org": "default", "project": "default", "env": "production", "slug": "ghost"}
    for method, path in documented:
        url = api.server.url + path.format(**fill)
        operation = document["paths"][path][method.lower()]
        anonymous = httpx.request(method, url)
        if "security" in operation:
            assert anonymous.status_code == 401, (method, path, anonymous.text)
        else:
            assert anonymous.status_code == 200, (method, path)
        client = api.admin if operation.get("x-paas-role") != "member" else api.member
        answered = client.request(method, url, json={"slug": "zz", "templateKey": "nope"} if "requestBody" in operation else None)
        assert answered.status_code < 500, (method, path, answered.text)
        body = answered.json()
        if isinstance(body, dict):  # a 404 here is "no such service", never "no such endpoint"
            assert body.get("error") not in ("no_such_endpoint", "method_not_allowed"), (method, path, body)
        for other in {"GET", "POST", "DELETE", "PUT", "PATCH"} - {m.upper() for m in document["paths"][path]}:
            assert client.request(other, url).status_code == 405, (other, path)

    # the request body's schema is the one the server enforces, the service schema what it returns
    schema = document["paths"]["/api/orgs/{org}/projects/{project}/envs/{env}/services/"]["post"]["requestBody"][
        "content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False and set(schema["required"]) == {"slug", "templateKey"}
    assert set(document["components"]["schemas"]["Service"]["properties"]) == set(SERVICE_FIELDS)
    listed = api.member.get(api.scope() + "/services/").json()
    assert listed and all(set(service) == set(SERVICE_FIELDS) for service in listed)


def test_catalog_search_over_http(api):
    for query, expected in (("redis", "redis-7"), ("search", "meilisearch-1.10"), ("data", "postgres-16")):
        keys = [t["key"] for t in api.member.get(api.server.url + "/api/service-templates", params={"q": query}).json()]
        assert expected in keys, (query, keys)
    everything = api.member.get(api.server.url + "/api/service-templates").json()
    assert len(everything) >= 6
    assert api.member.get(api.server.url + "/api/service-templates", params={"q": "nothing-like-this"}).json() == []


# -- the hot path -----------------------------------------------------------------------------------


def test_hot_commands_never_import_the_web_stack(engine, paas):
    added = paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", "paas-test/redis:7")
    assert added.exit_code == 0, added.output
    for argv in (["svc", "dsn", "cache"], ["env", "export", "--env", "production"], ["svc", "list", "--json"]):
        code = f"import sys; from paas_svc.cli.main import run; code = run({argv!r}); print(sorted(sys.modules), file=sys.stderr); sys.exit(code)"
        completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert completed.returncode == 0, completed.stderr[-2000:]
        modules = completed.stderr.strip().splitlines()[-1]
        for heavy in ("'starlette", "'uvicorn", "'anyio", "'paas_svc.api", "'paas_svc.state.tokens", "'h11"):
            assert heavy not in modules, (argv, heavy)
