"""The dashboard's routes that need no engine: the audit view (admins only, refusals audited),
a restore that is not confirmed, and the OpenAPI document built from the same table. The
routes over a real engine are driven from a browser in tests/engine/test_dashboard_browser.py."""

from __future__ import annotations

import pytest


@pytest.fixture
def app_and_tokens(tmp_path):
    from starlette.testclient import TestClient

    from paas_svc.api.app import create_app
    from paas_svc.api.context import ServerContext
    from paas_svc.state.store import open_store
    from paas_svc.state.tokens import create_token

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    context = ServerContext(home)
    store = open_store(home)
    try:
        _, admin = create_token(store, "alice", "admin")
        _, member = create_token(store, "bob", "member")
        store.audit("add", "default", "production", "cache", "template=redis-7 <b>not html</b>")
    finally:
        store.close()
    with TestClient(create_app(context)) as client:
        yield client, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {member}"}


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
