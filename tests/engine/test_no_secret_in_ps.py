"""No password on any process's command line while a real backup runs: a thread reads every
host process's command line (tests/argv_watch.py: what `ps -eo args` shows, containers'
processes included) from before the backup starts until it ends, and the tool is held in flight until the watcher has seen it.

MongoDB: the stand-in image has no mongodump, so the test puts a small one in the container
(a script that records what it was given and waits for a go-ahead); the command line and the
config file are paas's real ones. PostgreSQL: the real pg_dump, held by a table lock.
"""

from __future__ import annotations

import subprocess

import psycopg

from tests.support.argv_watch import ArgvWatcher
from tests.support.cli import PAAS_BIN
from tests.support.images import POSTGRES_IMAGE, STANDIN_IMAGE
from tests.support.services import add, dsn

FAKE_MONGODUMP = r"""#!/usr/bin/python3
import gzip, os, sys, time
args = sys.argv[1:]
if args == ["--version"]:
    print("mongodump version: 100.9.4 (stand-in)")
    sys.exit(0)
if "--config" in args:
    config = args[args.index("--config") + 1]
    with open("/tmp/seen", "w") as seen:
        seen.write(oct(os.stat(config).st_mode & 0o777) + "\n" + open(config).read().strip() + "\n" + config + "\n")
deadline = time.monotonic() + 60
while not os.path.exists("/tmp/go") and time.monotonic() < deadline:
    time.sleep(0.05)
sys.stdout.buffer.write(gzip.compress(b"a mongodump archive"))
"""


def _password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_mongodb_backup_shows_no_password_in_ps(paas, engine, tmp_path):
    add(paas, "docs", "mongodb-7", image=STANDIN_IMAGE)
    password = _password(dsn(paas, "docs"))
    box = engine.containers.get(paas("svc", "show", "docs", "--json").stdout.split('"container": "')[1].split('"')[0])
    code, output = box.exec_run(["python3", "-c", f"open('/usr/local/bin/mongodump', 'w').write({FAKE_MONGODUMP!r}); "
                                                  "import os; os.chmod('/usr/local/bin/mongodump', 0o755)"])
    assert code == 0, output
    with ArgvWatcher() as watcher:
        process = subprocess.Popen([PAAS_BIN, "svc", "backup", "docs", "-o", str(tmp_path / "docs.mongoarchive")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = watcher.wait_for("--authenticationDatabase admin --config /tmp/")  # the tool, not the sh -c around it
            box.exec_run(["touch", "/tmp/go"])
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr
    assert "--config /tmp/" in line and "--username app" in line
    leaked = [seen for seen in watcher.lines if password in seen]
    assert leaked == [], f"the password is on a command line: {leaked}"
    mode, config, config_path = box.exec_run(["cat", "/tmp/seen"]).output.decode().splitlines()
    assert mode == "0o600" and config == f'password: "{password}"'
    assert box.exec_run(["test", "-e", config_path]).exit_code != 0, "the config file is gone after the call"


def test_postgres_backup_shows_no_password_in_ps(paas, engine, tmp_path):
    add(paas, "db", "postgres-16", image=POSTGRES_IMAGE)
    url = dsn(paas, "db")
    password = _password(url)
    with psycopg.connect(url) as setup:
        setup.execute("CREATE TABLE held (n int)")
    with ArgvWatcher() as watcher, psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")  # pg_dump waits for it: the dump stays in flight
        process = subprocess.Popen([PAAS_BIN, "svc", "backup", "db", "-o", str(tmp_path / "db.pgdump")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = watcher.wait_for("pg_dump -Fc")
            holder.rollback()
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr
    assert "pg_dump -Fc" in line
    leaked = [seen for seen in watcher.lines if password in seen]
    assert leaked == [], f"the password is on a command line: {leaked}"
