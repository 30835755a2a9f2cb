"""`paas login` checks before any request, and what a logged-in or logged-out `svc dsn` imports
(the hot path: a logged-out one nothing new, a logged-in one http.client, never the web stack)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.api_server import free_port
from tests.support.cli import run_paas_process


def test_login_refuses_plain_http_off_loopback_and_a_token_in_argv(isolated_home):
    plain = run_paas_process("login", "http://paas.example.com", "--token-stdin", input="paas_x\n")
    assert plain.exit_code == 2 and "in clear" in plain.stderr and "https://" in plain.stderr, plain.output
    for bad in ("ftp://127.0.0.1", "http://127.0.0.1:8080/api", "127.0.0.1:8080"):
        refused = run_paas_process("login", bad, "--token-stdin", input="paas_x\n")
        assert refused.exit_code == 2, (bad, refused.output)
    argv = run_paas_process("login", "http://127.0.0.1:1")
    assert argv.exit_code == 2 and "--token-stdin" in argv.stderr
    assert not (isolated_home / "login.json").exists()


def test_an_unreachable_server_is_a_clear_error_and_logout_makes_it_local(isolated_home):
    isolated_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (isolated_home / "login.json").write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}", "token": "paas_x"}))
    down = run_paas_process("svc", "list")
    assert down.exit_code == 8 and "Cannot reach the server" in down.stderr and "paas logout" in down.stderr, down.output
    clone = run_paas_process("svc", "clone", "cache", "--to-env", "staging")
    assert clone.exit_code == 2 and "does not go through the server yet" in clone.stderr, clone.output
    assert run_paas_process("backup", "run-due").exit_code == 2
    # this session's commands that act on local state only: refused, never run on this machine's services
    for argv in (["svc", "import", "db", "--url-stdin", "--yes"], ["backup", "pitr", "status", "db"],
                 ["backup", "notify", "list"], ["svc", "restore", "db", "--to-time", "latest", "--yes"],
                 ["backup", "verify", "db", "--to-time=latest"],
                 ["backup", "dest", "add", "nas", "--path", "/tmp"], ["backup", "dest", "list"]):  # the server's hints name them
        refused = run_paas_process(*argv, input="postgres://u:p@db.example/x\n")
        assert refused.exit_code == 2 and "does not go through the server yet" in refused.stderr, (argv, refused.output)
    assert "paas svc restore --to-time" in run_paas_process("svc", "restore", "db", "--to-time", "latest").stderr
    assert run_paas_process("svc", "clone", "--help").exit_code == 0
    assert run_paas_process("backup", "schedule", "list").exit_code == 8, "through the server"
    out = run_paas_process("logout")
    assert out.exit_code == 0 and "local again" in out.stdout
    assert run_paas_process("whoami", "--json").exit_code == 0


def _modules_after(argv: list[str], home) -> tuple[int, set[str]]:
    code = ("import sys; from paas_svc.cli.main import run; code = run(%r); "
            "print(code, ' '.join(sorted(sys.modules)), file=sys.__stderr__)" % (argv,))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PAAS_HOME": str(home), "PATH": "/usr/bin:/bin"})
    exit_code, _, modules = done.stderr.strip().splitlines()[-1].partition(" ")
    return int(exit_code), set(modules.split())


def test_svc_dsn_logged_out_loads_no_http_client_and_logged_in_no_web_stack(isolated_home):
    isolated_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    code, modules = _modules_after(["svc", "dsn", "cache"], isolated_home)
    assert code == 3 and "http.client" not in modules and "paas_svc.cli.remote" in modules
    (isolated_home / "login.json").write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}", "token": "paas_x"}))
    code, modules = _modules_after(["svc", "dsn", "cache"], isolated_home)
    assert code == 8 and "http.client" in modules
    assert not {"httpx", "starlette", "uvicorn", "docker", "paas_svc.api", "paas_svc.secrets.box"} & modules


def test_an_expired_token_is_refused_with_a_hint_that_says_expired(tmp_path):
    import sqlite3

    from tests.support.api_server import Server

    server = Server(tmp_path / "server-home").start()
    try:
        token = server.token("old", "admin")
        with sqlite3.connect(server.home / "state.db") as db:
            db.execute("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE name = 'old'")
        db.close()
        client = {"PAAS_HOME": str(tmp_path / "client-home")}
        refused = run_paas_process("login", server.url, "--token-stdin", input=token + "\n", env=client)
        assert refused.exit_code == 12 and "it is expired" in refused.stderr and "expired" in refused.stderr.split("hint:")[1]
        assert token not in refused.stderr
    finally:
        server.stop()


class _Answering:
    """Remote's request replaced by a fixed answer (the server's side is tests/engine/test_teams.py)."""

    def __init__(self, answer: dict):
        self.answer, self.queries = answer, []

    def __call__(self, path: str, **query):
        self.queries.append(query)
        return dict(self.answer)


def test_a_reveal_warns_of_the_servers_loopback_only_when_the_server_is_elsewhere(isolated_home, capsys):
    from paas_svc.cli.remote import Remote

    answer = {"dsn": "redis://:pw@127.0.0.1:4000/0", "warning": None, "ca_pem": None, "loopback": ["cache"]}
    for url, warned in (("https://paas.example.com", True), ("http://127.0.0.1:8437", False)):
        remote = Remote(url, "paas_x")
        remote.get = _Answering(answer)
        assert remote.reveal_dsn("cache", None, None, False, False)["dsn"] == answer["dsn"]
        err = capsys.readouterr().err
        assert ("cache: 127.0.0.1 is the server's own loopback address" in err) is warned, (url, err)
        assert remote.get.queries[0]["ca_file"] == str(isolated_home / "login-ca.crt")
    remote = Remote("https://paas.example.com", "paas_x")
    remote.get = _Answering({**answer, "loopback": []})
    remote.reveal_dsn("cache", None, None, False, False)
    assert capsys.readouterr().err == ""
