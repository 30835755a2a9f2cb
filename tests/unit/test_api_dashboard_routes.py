"""The dashboard's routes that need no engine: the audit view (admins only, refusals audited),
a restore that is not confirmed, and the OpenAPI document built from the same table. The
routes over a real engine are driven from a browser in tests/engine/test_dashboard_browser.py."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api_server import Server


class Client:
    """httpx against a real `paas serve` (no engine: these routes refuse before they need one)."""

    def __init__(self, url: str):
        self.url = url

    def get(self, path: str, **kwargs):
        return httpx.get(self.url + path, **kwargs)

    def post(self, path: str, **kwargs):
        return httpx.post(self.url + path, **kwargs)


@pytest.fixture
def app_and_tokens(tmp_path):
    from paas_svc.state.store import open_store

    server = Server(tmp_path / "home").start()
    try:
        admin, member = server.token("alice", "admin"), server.token("bob", "member")
        store = open_store(server.home)
        try:
            store.audit("add", "default", "production", "cache", "template=redis-7 <b>not html</b>")
        finally:
            store.close()
        yield Client(server.url), {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {member}"}
    finally:
        server.stop()


def test_the_audit_log_is_for_admins_newest_first(app_and_tokens):
    client, admin, member = app_and_tokens
    refused = client.get("/api/audit", headers=member)
    assert refused.status_code == 403 and "admin" in refused.json()["message"] and refused.json()["hint"]
    entries = client.get("/api/audit?limit=10", headers=admin).json()
    assert entries[0]["action"] == "api-denied" and "token=bob" in entries[0]["detail"]  # the refusal, newest
    assert any(e["action"] == "add" and e["detail"].endswith("<b>not html</b>") for e in entries)
    assert client.get("/api/audit?limit=0", headers=admin).status_code == 422
    assert client.get("/api/audit?project=..", headers=admin).status_code == 400


def test_removed_services_and_restore_of_unknown_service(app_and_tokens):
    client, admin, member = app_and_tokens
    scope = "/api/orgs/default/projects/default/envs/production"
    assert client.get(scope + "/removed-services", headers=member).json() == []
    body = {"backupId": "1", "confirm": "cache"}
    assert client.post(scope + "/services/cache/restore", json=body, headers=member).status_code == 403
    assert client.post(scope + "/services/cache/restore", json=body, headers=admin).status_code == 404
    bad = client.post(scope + "/services/cache/restore", json={"backupId": 1, "confirm": "cache"}, headers=admin)
    assert bad.status_code == 422 and "must be a string" in bad.json()["message"]


def test_the_openapi_document_has_the_dashboards_routes(app_and_tokens):
    client, _, _ = app_and_tokens
    paths = client.get("/api/openapi.json").json()["paths"]
    service = "/api/orgs/{org}/projects/{project}/envs/{env}/services/{slug}"
    assert paths[service + "/restore"]["post"]["x-paas-role"] == "admin"
    assert paths[service + "/restore"]["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "backupId", "confirm"]
    assert set(paths[service + "/backup-schedule"]) == {"put", "delete"}
    assert set(paths[service + "/backups"]) == {"get", "post"}
    for path in ("/logs", "/stats", "/repair", "/rotate-password"):
        assert service + path in paths
    assert paths["/api/audit"]["get"]["x-paas-role"] == "admin"
    assert "201" in paths[service + "/backups"]["post"]["responses"]


def test_a_project_scoped_admin_reads_only_its_projects_audit(tmp_path):
    from paas_svc.state.store import open_store

    server = Server(tmp_path / "home").start()
    try:
        result = server.paas("project", "create", "shop")
        assert result.exit_code == 0, result.output
        scoped = server.paas("token", "create", "carol", "--role", "admin", "--project", "shop")
        assert scoped.exit_code == 0, scoped.output
        headers = {"Authorization": f"Bearer {scoped.stdout.strip()}"}
        store = open_store(server.home)
        try:
            store.audit("add", "default", "production", "cache", "template=redis-7")
            store.audit("add", "shop", "production", "db", "template=postgres-16")
        finally:
            store.close()
        entries = httpx.get(server.url + "/api/audit", headers=headers).json()
        assert [(e["project"], e["slug"]) for e in entries if e["action"] == "add"] == [("shop", "db")]
        other = httpx.get(server.url + "/api/audit?project=default", headers=headers)
        assert other.status_code == 403 and "shop" not in other.text and "default" in other.json()["message"]
    finally:
        server.stop()


def test_a_schedule_through_the_server_whose_key_comes_from_its_environment_names_the_servers_fix(tmp_path):
    """The client may not pass --store-keys (the server's keys are its admin's choice): the
    refusal says what an admin does on the server's host instead of naming --store-keys."""
    from tests.support.state import stored_service

    server = Server(tmp_path / "home", env={"PAAS_BACKUP_KEY": "k" * 44}).start()
    try:
        stored_service(server.home)
        member = {"Authorization": f"Bearer {server.token('bob', 'member')}"}
        refused = httpx.post(server.url + "/api/cli/services/cache/backup-schedules?every=daily&env=production",
                             headers=member)
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["message"].startswith("The server cannot schedule backups yet") and "server's host" in body["hint"], body
        assert not list((tmp_path / "home").glob("*.env")), "nothing kept"
    finally:
        server.stop()
