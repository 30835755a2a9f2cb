"""API tokens against real SQLite: shown once, stored as a hash, listed, revoked, expired."""

import hashlib
import json
import sqlite3

import pytest

from paas_svc.state.home import ensure_home
from paas_svc.state.store import MIGRATIONS, open_store
from paas_svc.state.tokens import TokenRejected, authenticate


def test_create_prints_the_token_once_and_stores_only_its_hash(paas, isolated_home):
    result = paas("token", "create", "ci-preview", "--role", "member", "--expires", "30")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("paas_") and len(token) > 40
    assert "shown only now" in result.stderr and token not in result.stderr
    raw = b"".join(path.read_bytes() for path in isolated_home.iterdir() if path.is_file())
    assert token.encode() not in raw, "the token itself is never written to the home"
    with sqlite3.connect(isolated_home / "state.db") as db:
        (stored,) = db.execute("SELECT token_hash FROM api_tokens WHERE name = 'ci-preview'").fetchone()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    listed = paas("token", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["role"], row["state"]) == ("ci-preview", "member", "active")
    assert row["expires_at"] > row["created_at"]
    assert token not in listed.stdout and "hash" not in listed.stdout


def test_revoked_and_expired_tokens_are_refused(paas, isolated_home):
    admin = paas("token", "create", "alice", "--role", "admin").stdout.strip()
    old = paas("token", "create", "old", "--role", "member", "--expires", "1").stdout.strip()
    store = open_store(isolated_home)
    assert authenticate(store, admin).name == "alice"
    assert authenticate(store, old).role == "member"

    revoked = paas("token", "revoke", "alice")
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(TokenRejected, match="revoked") as refused:
        authenticate(store, admin)
    assert refused.value.token.name == "alice"

    with store.write() as db:  # a day has passed
        db.execute("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE name = 'old'")
    with pytest.raises(TokenRejected, match="expired"):
        authenticate(store, old)
    with pytest.raises(TokenRejected, match="unknown"):
        authenticate(store, "paas_" + "x" * 43)
    states = {row["name"]: row["state"] for row in json.loads(paas("token", "list", "--json").stdout)}
    assert states == {"alice": "revoked", "old": "expired"}
    actions = [(e["action"], e["detail"]) for e in json.loads(paas("audit", "--json").stdout)]
    assert ("token-revoke", "token=alice") in actions


@pytest.mark.parametrize("args, code, text", [
    (["token", "create", "x", "--role", "owner"], 2, "Unknown role"),
    (["token", "create", "Bad Name", "--role", "admin"], 2, "Invalid token name"),
    (["token", "create", "x", "--role", "admin", "--expires", "0"], 2, "--expires"),
    (["token", "revoke", "nobody"], 3, "No token named"),
])
def test_bad_token_commands(paas, args, code, text):
    result = paas(*args)
    assert result.exit_code == code, result.output
    assert text in result.stderr and "Traceback" not in result.stderr


def test_duplicate_token_name_conflicts(paas):
    assert paas("token", "create", "ci", "--role", "admin").exit_code == 0
    again = paas("token", "create", "ci", "--role", "member")
    assert again.exit_code == 4 and "already exists" in again.stderr and again.stdout == ""


def test_a_database_from_before_tokens_gains_the_table(isolated_home):
    home = ensure_home(isolated_home)
    db = sqlite3.connect(home / "state.db", isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT INTO meta(key, value) VALUES ('profile_id', 'abcabcabcabc')")
    db.execute("PRAGMA user_version = 1")
    db.close()
    store = open_store(home)
    assert store.query("PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert store.query("SELECT count(*) FROM api_tokens") == [(0,)]
