"""Teams (issue 23): one real `paas serve` on 127.0.0.1 and the real CLI logged in to it from
another home; tokens of people with roles and project scopes; the audit names the person and
the way in. The real engine with the Redis stand-in, real SQLite."""

from __future__ import annotations

import getpass
import json
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.api_server import Server, wait_for_status
from tests.support.cli import run_paas_process
from tests.support.engine import profile_id, sweep
from tests.support.images import REDIS_IMAGE


class Client:
    """The CLI in a home of its own, logged in (or not) to the server."""

    def __init__(self, home: Path, server: Server):
        self.home, self.server = home, server

    def paas(self, *args: str, input: str | None = None):
        return run_paas_process(*args, env={"PAAS_HOME": str(self.home)}, input=input)

    def login(self, token: str):
        result = self.paas("login", self.server.url, "--token-stdin", input=token + "\n")
        assert result.exit_code == 0, result.output
        return result


@pytest.fixture(scope="module")
def server(docker_client, tmp_path_factory):
    home = tmp_path_factory.mktemp("teams") / "server-home"
    cron_dir = home.parent / "server-cron.d"  # the server's host timer (backup schedules): in a folder of the test's
    cron_dir.mkdir()
    server = Server(home, env={"PAAS_SCHEDULER": "cron", "PAAS_CRON_DIR": str(cron_dir)}).start()
    added = server.paas("svc", "add", "cache", "--template", "redis-7", "--image", REDIS_IMAGE, "--env", "development")
    assert added.exit_code == 0, added.output
    assert server.paas("project", "create", "other").exit_code == 0
    server.admin_token = server.token("alice", "admin")
    try:
        yield server
    finally:
        server.stop()
        profile = profile_id(home)
        if profile:
            sweep(docker_client, f"paas.profile={profile}")


@pytest.fixture
def client(server, tmp_path):
    return Client(tmp_path / "client-home", server)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def audit(server) -> list[dict]:
    return json.loads(ok(server.paas("audit", "--json")).stdout)


def test_logged_in_the_cli_gives_the_same_output_as_local(server, client):
    login = client.login(server.admin_token)
    assert "alice (admin)" in login.stdout
    assert (client.home / "login.json").stat().st_mode & 0o777 == 0o600
    assert server.admin_token not in login.stdout + login.stderr
    me = json.loads(ok(client.paas("whoami", "--json")).stdout)
    assert (me["name"], me["role"], me["via"], me["projects"]) == ("alice", "admin", "cli-server", None)

    for command in (("svc", "list", "--json"), ("svc", "list", "--all", "--json"), ("svc", "show", "cache", "--json"),
                    ("svc", "dsn", "cache"), ("svc", "env", "cache", "--format", "json"),
                    ("env", "export", "--env", "development"), ("svc", "list")):
        remote, local = client.paas(*command), server.paas(*command)
        assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), (command, remote.output, local.output)
    assert json.loads(client.paas("svc", "list", "--json").stdout)[0]["slug"] == "cache"
    # the same errors and exit codes
    for command in (("svc", "dsn", "nothing"), ("svc", "show", "cache", "--env", "nowhere"), ("svc", "dsn", "Bad_Slug"),
                    ("svc", "dsn", "a/b"), ("svc", "show", "..")):
        remote, local = client.paas(*command), server.paas(*command)
        assert remote.exit_code == local.exit_code != 0, (command, remote.output, local.output)

    logout = ok(client.paas("logout"))
    assert "local again" in logout.stdout and not (client.home / "login.json").exists()
    assert json.loads(ok(client.paas("whoami", "--json")).stdout)["via"] == "local"
    assert client.paas("svc", "dsn", "cache").exit_code == 3, "logged out: the client's own (empty) state"


def test_a_tls_services_url_through_the_server_names_the_clients_copy_of_the_ca(server, tmp_path):
    """The server's own CA path means nothing on a teammate's machine: the host view names the
    CLI's copy (written before the URL is printed; a home with a space, as on macOS), and redis-py
    verifies with it. The network view's docker mount names the server's file: a bind mount's
    source is a path on the host of the engine that runs the app's container."""
    import redis

    client = Client(tmp_path / "Application Support" / "paas-svc", server)
    ok(server.paas("svc", "add", "secure", "--template", "redis-7", "--image", REDIS_IMAGE, "--env", "staging", "--tls"))
    try:
        client.login(server.admin_token)
        copy = client.home / "login-ca.crt"
        url = ok(client.paas("svc", "dsn", "secure")).stdout.strip()
        assert url.startswith("rediss://") and url.endswith(f"?ssl_ca_certs={copy}"), url
        assert copy.read_text() == (server.home / "tls" / "ca.crt").read_text() and copy.stat().st_mode & 0o777 == 0o644
        assert redis.Redis.from_url(url).ping()
        assert ok(server.paas("svc", "dsn", "secure")).stdout.strip() == url.replace(str(copy), str(server.home / "tls" / "ca.crt"))

        variables = json.loads(ok(client.paas("svc", "env", "secure", "--format", "json")).stdout)
        assert variables["SECURE_CA_CERT_FILE"] == str(copy) and variables["SECURE_URL"] == url
        copy.unlink()  # written again by the next reveal
        exported = json.loads(ok(client.paas("env", "export", "--env", "staging", "--format", "json")).stdout)
        assert exported["SECURE_CA_CERT_FILE"] == str(copy) and copy.exists()
        docker = ok(client.paas("env", "export", "--env", "staging", "--format", "docker", "--network")).stdout
        assert f"-v {server.home / 'tls' / 'ca.crt'}:/paas-tls/ca.crt:ro" in docker, docker
        plain = ok(client.paas("svc", "dsn", "cache")).stdout.strip()  # no TLS: no CA named, none needed
        assert plain.startswith("redis://") and "ssl_ca_certs" not in plain

        ok(client.paas("logout"))
        assert not copy.exists(), "logout takes the server's CA away with the login"
    finally:
        ok(server.paas("svc", "rm", "secure", "--env", "staging", "--purge", "--yes", "--no-backup"))


def test_a_viewer_lists_but_reveals_and_changes_nothing_exit_12(server, client):
    client.login(server.token("vera", "viewer"))
    listed = json.loads(ok(client.paas("svc", "list", "--json")).stdout)
    assert [row["slug"] for row in listed] == ["cache"]
    ok(client.paas("svc", "show", "cache"))
    ok(client.paas("svc", "stats", "--json"))
    for command in (("svc", "dsn", "cache"), ("svc", "env", "cache"), ("env", "export", "--env", "development"),
                    ("svc", "stop", "cache"), ("svc", "add", "x", "-t", "redis-7"), ("svc", "rm", "cache"), ("audit",)):
        refused = client.paas(*command)
        assert refused.exit_code == 12, (command, refused.output)
        assert "role" in refused.stderr and "'vera' is a viewer" in refused.stderr and "hint:" in refused.stderr
        assert "redis://" not in refused.stdout
    # the refusal is audited with the person
    denied = [row for row in audit(server) if row["action"] == "api-denied" and "token=vera" in row["detail"]]
    assert denied and denied[-1]["actor"] == "vera" and denied[-1]["via"] == "cli-server"
    # a viewer's token on the API itself: a change is refused too
    stop = httpx.post(server.scope("development") + "/services/cache/stop",
                      headers={"Authorization": "Bearer " + client_token(client)}, timeout=30)
    assert stop.status_code == 403, stop.text


def client_token(client) -> str:
    return json.loads((client.home / "login.json").read_text())["token"]


def test_a_revoked_token_is_refused_at_once_and_the_hint_says_revoked(server, client):
    client.login(server.token("rita", "admin"))
    ok(client.paas("svc", "dsn", "cache"))
    ok(server.paas("token", "revoke", "rita"))
    refused = client.paas("svc", "dsn", "cache")
    assert refused.exit_code == 12, refused.output
    assert "revoked" in refused.stderr and "paas login" in refused.stderr
    listed = client.paas("svc", "list")
    assert listed.exit_code == 12 and "revoked" in listed.stderr


def test_an_unknown_token_is_refused_at_login_exit_12(server, client):
    refused = client.paas("login", server.url, "--token-stdin", input="paas_notatokenatall\n")
    assert refused.exit_code == 12 and "unknown" in refused.stderr, refused.output
    assert not (client.home / "login.json").exists()


def test_a_project_scope_limits_the_token_to_its_projects(server, client):
    made = ok(server.paas("token", "create", "olga", "--role", "admin", "--project", "other", "--json"))
    assert json.loads(made.stdout)["projects"] == ["other"]
    client.login(json.loads(made.stdout)["token"])
    for command in (("svc", "list"), ("svc", "dsn", "cache"), ("svc", "show", "cache", "--project", "default"),
                    ("env", "export", "--env", "development", "--project", "default")):
        refused = client.paas(*command)
        assert refused.exit_code == 12, (command, refused.output)
        assert "project scope" in refused.stderr and "'other'" not in refused.stdout
    assert json.loads(ok(client.paas("svc", "list", "--all", "--json")).stdout) == []
    assert json.loads(ok(client.paas("svc", "list", "--project", "other", "--json")).stdout) == []
    # the API's own routes check it as well
    headers = {"Authorization": "Bearer " + client_token(client)}
    assert httpx.get(server.scope("development") + "/services/", headers=headers, timeout=30).status_code == 403
    projects = httpx.get(f"{server.url}/api/orgs/default/projects", headers=headers, timeout=30).json()
    assert [project["name"] for project in projects] == ["other"]


def test_the_audit_names_the_person_and_the_way_in(server, client):
    client.login(server.admin_token)
    ok(client.paas("svc", "dsn", "cache"))
    ok(server.paas("svc", "dsn", "cache"))
    headers = {"Authorization": "Bearer " + server.admin_token}
    # a browser's fetch from the dashboard's page
    assert httpx.get(server.scope("development") + "/services/cache/dsn", timeout=30,
                     headers={**headers, "Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert httpx.get(server.scope("development") + "/services/cache/dsn", headers=headers, timeout=30).status_code == 200
    reveals = [(row["actor"], row["via"]) for row in audit(server) if row["action"] == "reveal-dsn"][-4:]
    assert reveals[0] == ("alice", "cli-server")
    assert reveals[1][1] == "local" and reveals[1][0] == getpass.getuser()
    assert reveals[2:] == [("alice", "dashboard"), ("alice", "api")]
    table = ok(server.paas("audit", "--limit", "4")).stdout
    assert "VIA" in table.splitlines()[0] and "cli-server" in table and "dashboard" in table

    # an add from the page: the background provisioning's own rows name the person too
    added = httpx.post(server.scope("development") + "/services/", json={"slug": "web", "templateKey": "redis-7"},
                       headers={**headers, "Sec-Fetch-Site": "same-origin"}, timeout=30)
    assert added.status_code == 202, added.text
    assert wait_for_status(httpx.Client(headers=headers, timeout=30), server.scope("development") + "/services/web",
                           {"Ready", "Failed"})["status"] == "Ready"
    rows = {(row["action"], row["actor"], row["via"]) for row in audit(server) if row["slug"] == "web"}
    assert {("api-add", "alice", "dashboard"), ("add", "alice", "dashboard")} <= rows, rows
    ok(server.paas("svc", "rm", "web", "--purge", "--yes", "--no-backup"))


def test_a_member_starts_stops_waits_reads_logs_and_removes_through_the_server(server, client):
    client.login(server.token("mia", "member"))
    # the server's own `--image redis-7=...` applies when the client names no image
    added = ok(client.paas("svc", "add", "jobs", "--template", "redis-7", "--env", "development", "--json"))
    shown = json.loads(added.stdout)
    assert (shown["action"], shown["status"], shown["image"]) == ("add", "Ready", REDIS_IMAGE)
    assert "Apps get JOBS_URL" in added.stderr
    local = json.loads(ok(server.paas("svc", "show", "jobs", "--json")).stdout)
    assert {key: local[key] for key in shown if key not in ("action", "elapsed_seconds", "reattached", "updated_at")} == {
        key: value for key, value in shown.items() if key not in ("action", "elapsed_seconds", "reattached", "updated_at")}
    taken = client.paas("svc", "add", "jobs", "--template", "redis-7", "--env", "development")
    assert taken.exit_code == 4, taken.output
    stopped = json.loads(ok(client.paas("svc", "stop", "jobs", "--json")).stdout)
    local_stop = json.loads(ok(server.paas("svc", "stop", "jobs", "--json")).stdout)
    assert stopped.keys() == local_stop.keys() and (stopped["action"], stopped["status"]) == ("stop", "Stopped")
    assert json.loads(ok(client.paas("svc", "show", "jobs", "--json")).stdout)["status"] == "Stopped"
    started = ok(client.paas("svc", "start", "jobs"))
    assert "jobs in default/development: started, Ready in" in started.stdout
    assert json.loads(ok(client.paas("svc", "restart", "jobs", "--json")).stdout)["status"] == "Ready"
    assert "Ready after" in ok(client.paas("svc", "wait", "jobs")).stdout
    logs, local_logs = ok(client.paas("svc", "logs", "jobs", "--tail", "3")), ok(server.paas("svc", "logs", "jobs", "--tail", "3"))
    assert logs.stdout == local_logs.stdout and logs.stdout.strip()
    updated = json.loads(ok(client.paas("svc", "update", "jobs", "--memory", "256m", "--json")).stdout)
    assert (updated["changed"], updated["limits"]["memory"]) == (["limits"], "256m"), updated
    stats, local_stats = (json.loads(ok(paas("svc", "stats", "jobs", "--json")).stdout) for paas in (client.paas, server.paas))
    assert [(r["slug"], r["memory_limited"], r["memory_limit_bytes"]) for r in stats] == [
        (r["slug"], r["memory_limited"], r["memory_limit_bytes"]) for r in local_stats] == [("jobs", True, 256 * 1024 * 1024)]
    assert "MEMORY" in ok(client.paas("svc", "stats")).stdout
    # a member may not purge, nor reveal
    purge = client.paas("svc", "rm", "jobs", "--purge", "--yes")
    assert purge.exit_code == 12 and "purge" in purge.stderr, purge.output
    removed = ok(client.paas("svc", "rm", "jobs"))
    assert "Removed jobs from default/development. Its volume" in removed.stdout and "Recover it" in removed.stderr
    assert client.paas("svc", "logs", "jobs").exit_code == 4, "removed: a conflict, as locally"
    changes = [(row["action"], row["actor"], row["via"]) for row in audit(server) if row["slug"] == "jobs"]
    for action in ("stop", "start", "restart", "rm"):
        assert (action, "mia", "cli-server") in changes, changes
    assert ("stop", getpass.getuser(), "local") in changes, changes
    ok(server.paas("svc", "rm", "jobs", "--purge", "--yes", "--no-backup"))


def test_audit_run_repair_and_rotate_password_through_the_server(server, client):
    client.login(server.admin_token)
    remote, local = client.paas("audit", "--json"), server.paas("audit", "--json")
    assert remote.exit_code == 0 and json.loads(remote.stdout) == json.loads(local.stdout), remote.output
    assert client.paas("audit", "--limit", "3").stdout == server.paas("audit", "--limit", "3").stdout

    echo = ("run", "--env", "development", "--", "sh", "-c", 'echo "$CACHE_URL"')
    ran = ok(client.paas(*echo))
    assert ran.stdout == ok(server.paas(*echo)).stdout and ran.stdout.startswith("redis://")

    before = ok(client.paas("svc", "dsn", "cache")).stdout
    rotated = ok(client.paas("svc", "rotate-password", "cache", "--json"))
    assert json.loads(rotated.stdout)["action"] == "rotate-password"
    after = ok(client.paas("svc", "dsn", "cache")).stdout
    assert after != before and after == ok(server.paas("svc", "dsn", "cache")).stdout

    ok(server.paas("svc", "stop", "cache"))
    repaired = json.loads(ok(client.paas("svc", "repair", "cache", "--json")).stdout)
    assert (repaired["action"], repaired["status"]) == ("repair", "Ready")
    rows = [(row["action"], row["actor"], row["via"]) for row in audit(server) if row["slug"] == "cache"]
    assert ("repair", "alice", "cli-server") in rows, rows

    taken = json.loads(ok(client.paas("backup", "now", "cache", "--json")).stdout)
    assert (taken["service"], taken["status"]) == ("default/development/cache", "ok"), taken
    assert str(server.home) in taken["location"], "taken and kept on the server"
    for command in (("backup", "list", "--json"), ("backup", "list", "cache"), ("backup", "list")):
        remote, local = client.paas(*command), server.paas(*command)
        assert (remote.exit_code, remote.stdout) == (0, local.stdout), (command, remote.output)
    assert taken["id"] in [row["id"] for row in json.loads(client.paas("backup", "list", "--json").stdout)["backups"]]
    verified = json.loads(ok(client.paas("backup", "verify", "cache", "--json")).stdout)
    assert (verified["ok"], verified["backup_id"]) == (True, taken["id"]), verified
    listed = json.loads(ok(server.paas("backup", "list", "--json")).stdout)["backups"]
    assert [row["verified"] for row in listed if row["id"] == taken["id"]] == [True]
    said = ok(client.paas("backup", "now", "cache")).stdout  # the id is what restore takes from here; the path is the server's
    assert said.startswith("Backed up default/development/cache as backup ") and f"on the server at {server.home}" in said, said
    elsewhere = client.paas("backup", "verify", "cache", "/tmp/some-file.rdb")
    assert elsewhere.exit_code == 2 and "paas logout" in elsewhere.stderr, elsewhere.output

    client.login(server.token("max", "member"))
    refused = client.paas("audit")
    assert refused.exit_code == 12 and "'max' is a member" in refused.stderr, refused.output


def test_svc_backup_downloads_through_the_server_and_restores_locally_the_same(server, client, tmp_path):
    client.login(server.admin_token)
    out = tmp_path / "out"
    out.mkdir()
    made = json.loads(ok(client.paas("svc", "backup", "cache", "-o", f"{out}/", "--json")).stdout)
    path = Path(made["file"])
    assert path.parent == out and path.stat().st_mode & 0o777 == 0o600
    assert path.name.startswith("default-development-cache-") and made["template"] == "redis-7"
    header = json.loads(path.read_bytes().partition(b"\n")[0])
    assert header["payload_bytes"] == made["bytes"] == len(path.read_bytes().partition(b"\n")[2])
    text = ok(client.paas("svc", "backup", "cache", "-o", str(tmp_path / "second.rdb")))
    assert "Backed up default/development/cache (redis-7) to" in text.stdout and "paas svc restore cache" in text.stderr
    # the file is a real backup: the server restores it
    ok(server.paas("svc", "restore", "cache", str(path), "--yes"))
    client.login(server.token("mo", "member"))
    refused = client.paas("svc", "backup", "cache", "-o", str(tmp_path / "no.rdb"))
    assert refused.exit_code == 12 and not (tmp_path / "no.rdb").exists(), refused.output


# -- svc restore and backup schedule through the server ------------------------------------------

def upload_files(server) -> list[Path]:
    """What the server's scratch folders hold (uploads and decrypted copies must be gone)."""
    return [path for path in (server.home / "tmp").glob("*/*") if path.is_file()]


def redis_at(server, slug: str):
    import redis

    return redis.Redis.from_url(ok(server.paas("svc", "dsn", slug, "--env", "development")).stdout.strip())


@pytest.fixture
def keep(server):
    ok(server.paas("svc", "add", "keep", "--template", "redis-7", "--image", REDIS_IMAGE, "--env", "development"))
    try:
        yield "keep"
    finally:
        ok(server.paas("svc", "rm", "keep", "--purge", "--yes", "--no-backup"))


def test_restore_uploads_the_file_to_the_server_and_brings_the_data_back(server, client, keep, tmp_path):
    client.login(server.admin_token)
    redis_at(server, keep).set("answer", "first")
    backup = tmp_path / "keep.rdb"
    ok(client.paas("svc", "backup", keep, "-o", str(backup)))  # downloaded here
    redis_at(server, keep).set("answer", "second")

    restored = ok(client.paas("svc", "restore", keep, str(backup), "--yes", "--json"))
    shown = json.loads(restored.stdout)
    assert (shown["action"], shown["file"], shown["from"]["slug"]) == ("restore", str(backup), keep), shown
    # The data from before is kept on the server: a Redis restore keeps its old volume (the safety copy).
    on_server = json.loads(ok(server.paas("svc", "show", keep, "--json")).stdout)
    assert shown["safety_backup"] == on_server["safety_volume"], (shown, on_server)
    assert subprocess.run(["docker", "volume", "inspect", shown["safety_backup"]], capture_output=True).returncode == 0
    assert redis_at(server, keep).get("answer") == b"first"
    text = ok(client.paas("svc", "restore", keep, str(backup), "--yes"))
    assert text.stdout.startswith(f"Restored default/development/{keep} from {backup} (backup of default/development/{keep} made ")
    assert "The data it had before is saved in" in text.stderr
    rows = [(row["action"], row["actor"], row["via"]) for row in audit(server) if row["slug"] == keep]
    assert ("restore", "alice", "cli-server") in rows, rows
    assert upload_files(server) == [], "the upload is removed once restored"

    # without --yes and no terminal: refused before anything is sent
    asked = client.paas("svc", "restore", keep, str(backup))
    assert asked.exit_code == 2 and "--yes" in asked.stderr, asked.output

    # a recorded backup id restores the server's own file
    taken = json.loads(ok(client.paas("backup", "now", keep, "--json")).stdout)
    redis_at(server, keep).set("answer", "third")
    by_id = json.loads(ok(client.paas("svc", "restore", keep, str(taken["id"]), "--yes", "--json")).stdout)
    assert by_id["file"] == taken["location"] and redis_at(server, keep).get("answer") == b"first"
    redis_at(server, keep).set("answer", "fourth")
    latest = json.loads(ok(client.paas("svc", "restore", keep, "--latest", "--yes", "--json")).stdout)
    assert latest["file"] == taken["location"] and redis_at(server, keep).get("answer") == b"first"


def test_a_tampered_upload_is_refused_exit_2_and_nothing_changes(server, client, keep, tmp_path):
    client.login(server.admin_token)
    redis_at(server, keep).set("answer", "kept")
    backup = tmp_path / "keep.rdb"
    ok(client.paas("svc", "backup", keep, "-o", str(backup)))
    header, _, payload = backup.read_bytes().partition(b"\n")
    tampered = tmp_path / "tampered.rdb"
    tampered.write_bytes(header + b"\n" + payload[:-1] + bytes([payload[-1] ^ 1]))
    redis_at(server, keep).set("answer", "now")
    safety_before = sorted((server.home / "backups").rglob("*"))

    refused = client.paas("svc", "restore", keep, str(tampered), "--yes")
    assert refused.exit_code == 2 and "Nothing was changed" in refused.stderr, refused.output
    assert str(tampered) in refused.stderr and "upload-" not in refused.stderr, "named as the client's file"
    other = tmp_path / "other.rdb"
    other.write_bytes(json.dumps({**json.loads(header), "slug": "cache"}).encode() + b"\n" + payload)
    refused = client.paas("svc", "restore", keep, str(other), "--yes")
    assert refused.exit_code == 2 and "--allow-other-service" in refused.stderr, refused.output
    assert redis_at(server, keep).get("answer") == b"now"
    assert sorted((server.home / "backups").rglob("*")) == safety_before, "no safety backup either"
    assert upload_files(server) == []


def test_restore_through_the_server_needs_an_admin_exit_12(server, client, keep, tmp_path):
    client.login(server.admin_token)
    backup = tmp_path / "keep.rdb"
    ok(client.paas("svc", "backup", keep, "-o", str(backup)))
    redis_at(server, keep).set("answer", "untouched")
    for name, role in (("vic", "viewer"), ("mel", "member")):
        client.login(server.token(name, role))
        refused = client.paas("svc", "restore", keep, str(backup), "--yes")
        assert refused.exit_code == 12, refused.output
        assert f"'{name}' is a {role}" in refused.stderr and "hint:" in refused.stderr, refused.output
    assert redis_at(server, keep).get("answer") == b"untouched"
    denied = [row for row in audit(server) if row["action"] == "api-denied" and "token=mel" in row["detail"]]
    assert denied and denied[-1]["via"] == "cli-server"
    assert upload_files(server) == []


def test_an_upload_over_the_servers_limit_is_refused(server, client, keep, tmp_path):
    import socket

    small = Server(server.home, "--max-upload", "8k").start()  # a second server on the same home, a small limit
    try:
        client.server = small
        client.login(server.admin_token)
        redis_at(server, keep).set("big", secrets.token_hex(32 * 1024))  # random: the RDB file cannot compress it
        backup = tmp_path / "keep.rdb"
        ok(client.paas("svc", "backup", keep, "-o", str(backup)))
        assert backup.stat().st_size > 8 * 1024
        redis_at(server, keep).set("big", "changed")
        refused = client.paas("svc", "restore", keep, str(backup), "--yes")
        assert refused.exit_code == 2 and "8192" in refused.stderr and "--max-upload" in refused.stderr, refused.output

        # a client that declares no length (chunked) is cut at the limit, not read to the end
        path = f"/api/cli/services/{keep}/restore-upload?env=development"
        with socket.create_connection(("127.0.0.1", small.port), timeout=30) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.admin_token}\r\n"
                         "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
            answer = b""
            try:
                for _ in range(64):  # 64 x 4 KiB: far over 8 KiB
                    sock.sendall(b"1000\r\n" + b"z" * 4096 + b"\r\n")
            except OSError:
                pass  # closed on us once over the limit
            sock.settimeout(10)
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except OSError:
                pass
        assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert redis_at(server, keep).get("big") == b"changed"
        assert upload_files(server) == []
    finally:
        small.stop()


def test_backup_schedules_through_the_server_are_the_servers(server, client, keep):
    client.login(server.token("mae", "member"))
    added = json.loads(ok(client.paas("backup", "schedule", keep, "--every", "daily", "--keep", "3", "--json")).stdout)
    assert (added["service"], added["every"], added["keep_last"]) == (f"default/development/{keep}", "daily", 3), added
    on_server = json.loads(ok(server.paas("backup", "schedule", "list", "--json")).stdout)
    assert [(row["service"], row["every"]) for row in on_server] == [(f"default/development/{keep}", "daily")]
    for command in (("backup", "schedule", "list"), ("backup", "schedule", "list", "--json")):
        remote, local = client.paas(*command), server.paas(*command)
        assert (remote.exit_code, remote.stdout) == (0, local.stdout), (command, remote.output)
    cron_dir = Path(server.env["PAAS_CRON_DIR"])
    assert any(cron_dir.iterdir()), "the server's host timer is installed"
    assert not (client.home / "scheduler.env").exists()
    rows = [(row["action"], row["actor"], row["via"]) for row in audit(server) if row["slug"] == keep]
    assert ("backup-schedule", "mae", "cli-server") in rows, rows
    text = ok(client.paas("backup", "schedule", keep, "--every", "hourly"))
    assert text.stdout.startswith(f"Changed backups of default/development/{keep}: every hourly")
    assert client.paas("backup", "schedule", keep, "--every", "daily", "--store-keys").exit_code == 2

    removed = json.loads(ok(client.paas("backup", "schedule", "rm", keep, "--json")).stdout)
    assert removed == {"service": f"default/development/{keep}", "removed": 1}
    assert json.loads(ok(server.paas("backup", "schedule", "list", "--json")).stdout) == []
    assert client.paas("backup", "schedule", "rm", keep).exit_code == 3, "none left: not found, as locally"
    client.login(server.token("vio", "viewer"))
    assert client.paas("backup", "schedule", keep, "--every", "daily").exit_code == 12
    assert ok(client.paas("backup", "schedule", "list")).stdout == server.paas("backup", "schedule", "list").stdout


def test_an_encrypted_upload_is_opened_with_the_servers_keys_and_bound_to_its_service(server, client, keep, tmp_path):
    client.login(server.admin_token)
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    ok(server.paas("backup", "dest", "add", "teams-offsite", "--path", str(offsite)))
    redis_at(server, keep).set("answer", "sealed")
    taken = json.loads(ok(client.paas("backup", "now", keep, "--to", "teams-offsite", "--json")).stdout)
    assert taken["encrypted"], taken
    sealed = tmp_path / "sealed.bin"  # a copy on the client's side
    sealed.write_bytes(Path(taken["location"]).read_bytes())
    redis_at(server, keep).set("answer", "later")

    ok(client.paas("svc", "restore", keep, str(sealed), "--yes"))  # decrypted on the server, with its key
    assert redis_at(server, keep).get("answer") == b"sealed"
    elsewhere = client.paas("svc", "restore", "cache", str(sealed), "--yes")  # bound to keep
    assert elsewhere.exit_code == 2 and "encrypted backup of default/development/keep" in elsewhere.stderr, elsewhere.output

    # a recorded backup is checked against its record: a replaced file is refused
    local = json.loads(ok(client.paas("backup", "now", keep, "--json")).stdout)
    replaced = Path(local["location"])
    replaced.write_bytes(sealed.read_bytes())
    refused = client.paas("svc", "restore", keep, str(local["id"]), "--yes")
    assert refused.exit_code == 2 and "Nothing was changed" in refused.stderr, refused.output
    assert redis_at(server, keep).get("answer") == b"sealed"
    assert upload_files(server) == []
