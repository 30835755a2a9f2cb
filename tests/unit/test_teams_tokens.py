"""Tokens of people (issue 23) against real SQLite: the viewer role, project scopes, the
migration that adds them to an existing state, and the OpenAPI document of the CLI's routes."""

from __future__ import annotations

import sqlite3

import pytest

from paas_svc.errors import InvalidInput, NotFound
from paas_svc.state.home import ensure_home
from paas_svc.state.store import MIGRATIONS, open_store
from paas_svc.state.tokens import authenticate, create_token, role_allows


def test_roles_are_ordered_viewer_member_admin():
    assert [role_allows(role, "member") for role in ("viewer", "member", "admin")] == [False, True, True]
    assert [role_allows(role, "admin") for role in ("viewer", "member", "admin")] == [False, False, True]
    assert role_allows("viewer", "viewer") and not role_allows("nobody", "viewer")


def test_a_project_scope_names_existing_projects_only(isolated_home):
    store = open_store(ensure_home(isolated_home))
    store.create_project("shop")
    token, secret = create_token(store, "vera", "viewer", projects=["shop", "default", "shop"])
    assert token.project_scope == ("default", "shop") and authenticate(store, secret).allows_project("shop")
    assert not token.allows_project("other")
    with pytest.raises(NotFound):
        create_token(store, "olga", "admin", projects=["nowhere"])
    with pytest.raises(InvalidInput):
        create_token(store, "x", "owner")
    entry = store.list_audit()[-1]
    assert entry.action == "token-create" and "projects=default,shop" in entry.detail and entry.via == "local"


def test_an_existing_state_keeps_its_tokens_and_audit_through_the_migration(isolated_home):
    home = ensure_home(isolated_home)
    teams = next(i for i, sql in enumerate(MIGRATIONS) if "api_tokens_v9" in sql)
    with sqlite3.connect(home / "state.db") as db:  # a state as the version before wrote it
        for sql in MIGRATIONS[:teams]:
            db.executescript(sql)
        db.execute("PRAGMA user_version = %d" % teams)
        db.execute("INSERT INTO api_tokens(name, role, token_hash, created_at) VALUES ('bob', 'member', 'h', 'now')")
        db.execute("INSERT INTO audit(at, os_user, action, project, env, slug) VALUES ('then', 'ann', 'add', 'p', 'e', 's')")
    db.close()
    store = open_store(home)
    (bob,) = [row for row in store.query("SELECT name, role, projects FROM api_tokens")]
    assert tuple(bob) == ("bob", "member", None)
    (entry,) = store.list_audit()
    assert (entry.os_user, entry.actor, entry.via) == ("ann", "", "local")
    create_token(store, "vera", "viewer")  # the new CHECK allows it


def test_the_openapi_document_lists_the_cli_routes_with_their_roles():
    from paas_svc.api.openapi import build_document
    from paas_svc.api.routes import ENDPOINTS, SERVICE_FIELDS, SERVICE_STATUSES

    paths = build_document(ENDPOINTS, SERVICE_FIELDS, SERVICE_STATUSES)["paths"]
    assert paths["/api/cli/services"]["get"]["x-paas-role"] == "viewer"
    assert paths["/api/cli/services"]["post"]["x-paas-role"] == "member"
    assert paths["/api/cli/services/{slug}/dsn"]["get"]["x-paas-role"] == "admin"
    assert paths["/api/cli/services/{slug}/logs"]["get"]["x-paas-role"] == "member"
    assert paths["/api/orgs/{org}/projects/{project}/envs/{env}/services/"]["get"]["x-paas-role"] == "viewer"
    operation_ids = [op["operationId"] for path in paths.values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids)), "one operationId per operation"
