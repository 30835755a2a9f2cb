"""API tokens for `paas serve`: named, with a role, optionally expiring, revocable.

A token is shown once when it is made; the database keeps only its SHA-256. Tokens are
32 random bytes, so a plain hash is enough (no password-style slow hash is needed: there
is nothing to guess), and the lookup by hash never compares secrets byte by byte.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from paas_svc.errors import Conflict, InvalidInput, NotFound
from paas_svc.naming import validate_name
from paas_svc.state.store import StateStore, utc_now

ADMIN = "admin"
MEMBER = "member"
VIEWER = "viewer"
ROLES = (ADMIN, MEMBER, VIEWER)
# What each role may do, in order: a viewer lists and reads status; a member also changes
# services (add, start, stop, rm, backups); an admin also reveals (DSNs, variables, backups' data).
_RANK = {VIEWER: 0, MEMBER: 1, ADMIN: 2}


def role_allows(role: str, needed: str) -> bool:
    """Whether a token of `role` may call what needs `needed` (viewer < member < admin)."""
    return _RANK.get(role, -1) >= _RANK[needed]
TOKEN_PREFIX = "paas_"
MAX_EXPIRY_DAYS = 3650


class Token(NamedTuple):
    id: int
    name: str
    role: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    projects: str | None = None  # the projects it is limited to, joined by commas; None: every project

    @property
    def project_scope(self) -> tuple[str, ...] | None:
        return None if self.projects is None else tuple(self.projects.split(","))

    def allows_project(self, project: str) -> bool:
        return self.projects is None or project in self.project_scope

    def state(self, now: str | None = None) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= (now or utc_now()):
            return "expired"
        return "active"


class TokenRejected(Exception):
    """Why a presented token was refused; `token` is the matching record when one exists
    (expired or revoked), so the refusal can be audited with its name."""

    def __init__(self, reason: str, token: Token | None = None):
        super().__init__(reason)
        self.reason = reason
        self.token = token


_COLUMNS = "id, name, role, created_at, expires_at, revoked_at, projects"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: StateStore, name: str, role: str, expires_days: int | None = None,
                 projects: list[str] | None = None) -> tuple[Token, str]:
    """Make a token for a person (or a machine); returns its record and the token itself (never
    stored). `projects` limits it to those projects (each must exist); None: every project."""
    validate_name(name, "token name")
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}.", hint="Use admin, member or viewer.")
    scope = None
    if projects:
        for project in projects:
            store.get_project(project)  # NotFound names the known projects
        scope = ",".join(sorted(set(projects)))
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRY_DAYS:
        raise InvalidInput(f"--expires must be between 1 and {MAX_EXPIRY_DAYS} days, not {expires_days}.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = None
    if expires_days is not None:
        expires_at = (datetime.now(timezone.utc) + timedelta(days=expires_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.write() as db:
        try:
            db.execute("INSERT INTO api_tokens(name, role, token_hash, created_at, expires_at, projects) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (name, role, token_hash(secret), utc_now(), expires_at, scope))
        except sqlite3.IntegrityError:
            raise Conflict(f"A token named {name!r} already exists.",
                           hint=f"Pick another name, or revoke it first with `paas token revoke {name}`.") from None
    store.audit("token-create", "", "", "", f"token={name} role={role} expires={expires_at or 'never'} projects={scope or 'all'}")
    return get_token(store, name), secret


def get_token(store: StateStore, name: str) -> Token:
    rows = store.query(f"SELECT {_COLUMNS} FROM api_tokens WHERE name = ?", (name,))
    if not rows:
        raise NotFound(f"No token named {name!r}.", hint="List them with `paas token list`.")
    return Token(*rows[0])


def list_tokens(store: StateStore) -> list[Token]:
    return [Token(*row) for row in store.query(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY name")]


def revoke_token(store: StateStore, name: str) -> Token:
    token = get_token(store, name)
    if token.revoked_at is None:
        with store.write() as db:
            db.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (utc_now(), token.id))
        store.audit("token-revoke", "", "", "", f"token={name}")
    return get_token(store, name)


def authenticate(store: StateStore, presented: str) -> Token:
    """The active token whose hash matches; TokenRejected otherwise."""
    rows = store.query(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash(presented),))
    if not rows:
        raise TokenRejected("unknown token")
    token = Token(*rows[0])
    state = token.state()
    if state != "active":
        raise TokenRejected(f"token {state}", token)
    return token
