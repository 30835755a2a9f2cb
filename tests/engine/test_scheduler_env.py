"""The installed cron entry, run as cron runs it (`env -i` with PATH, HOME and SHELL only), for
a profile whose master key comes from PAAS_MASTER_KEY and whose engine is named by DOCKER_HOST
(issue 20, item 5). Before the fix the entry passed PAAS_HOME alone: every scheduled backup
failed with "The master key file ... is missing"."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from paas_svc.secrets.box import new_key
from tests.support.cli import ok
from tests.support.engine import profile_id
from tests.support.images import REDIS_IMAGE

LOCAL_SOCKET = "unix:///var/run/docker.sock"  # the local engine, named explicitly
PAST = "2026-01-01T00:00:00Z"  # scheduled from then, an hourly backup is due whenever the entry runs
# This machine's own values of what the timer is given would be kept too: the test sets its own.
MACHINE_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "PAAS_ENGINE_CLIENT", "PAAS_BACKUP_KEY",
                     "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "AWS_CA_BUNDLE")


def env_file_path(home: Path) -> Path:
    return home / "scheduler.env"



def run_entry_as_cron(cron_file: Path, home: Path) -> subprocess.CompletedProcess:
    """The entry's command under the environment cron gives (PATH, HOME, SHELL), through sh."""
    [line] = [line for line in cron_file.read_text().splitlines() if line.startswith("* * * * *")]
    user, command = line.split(None, 6)[5:]
    assert user == "root" or user == os.environ.get("USER")
    command = command.replace("\\%", "%")  # what cron hands the shell
    return subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", f"HOME={Path.home()}", "SHELL=/bin/sh", "/bin/sh", "-c", command],
                          capture_output=True, text=True, timeout=180)


def test_the_installed_entry_backs_up_under_env_i_with_the_master_key_and_docker_host_it_was_given(
        paas, engine, isolated_home, tmp_path, monkeypatch):
    for name in MACHINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    key = new_key().decode()
    monkeypatch.setenv("PAAS_MASTER_KEY", key)
    monkeypatch.setenv("DOCKER_HOST", LOCAL_SOCKET)
    ok(paas("svc", "add", "cache", "--template", "redis-7", "--env", "production", "--image", REDIS_IMAGE))
    assert not (isolated_home / "master.key").exists()  # the key lives in the variable only
    cron_file = tmp_path / "cron.d" / f"paas-backup-{profile_id(isolated_home)}"

    # Without --store-keys the timer could not open the credentials: refused, nothing installed.
    refused = paas("backup", "schedule", "cache", "--every", "hourly", "--now", PAST)
    assert refused.exit_code == 2 and "--store-keys" in refused.stderr, refused.output
    assert not cron_file.exists()

    # A DOCKER_HOST that leads nowhere first: the run must use it (and fail), so the variable reaches it.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine-here.sock")
    ok(paas("backup", "schedule", "cache", "--every", "hourly", "--store-keys", "--now", PAST))
    assert key not in cron_file.read_text()
    assert stat.S_IMODE(env_file_path(isolated_home).stat().st_mode) == 0o600
    failed = run_entry_as_cron(cron_file, isolated_home)
    assert failed.returncode != 0
    log = (isolated_home / "logs" / "run-due.log").read_text()
    assert "no-engine-here.sock" in log and "master key" not in log, log

    # The same schedule again from a shell with the local socket: the env file follows, the run backs up.
    monkeypatch.setenv("DOCKER_HOST", LOCAL_SOCKET)
    again = ok(paas("backup", "schedule", "cache", "--every", "hourly", "--now", PAST))
    assert "updated" in again.stderr
    ran = run_entry_as_cron(cron_file, isolated_home)
    log = (isolated_home / "logs" / "run-due.log").read_text()
    assert ran.returncode == 0, log
    assert "backed up default/production/cache" in log and "master key file" not in log, log
    backups = json.loads(ok(paas("backup", "list", "cache", "--json")).stdout)["backups"]
    assert [b["status"] for b in backups if b["location"]] == ["ok"]
    assert Path([b for b in backups if b["location"]][0]["location"]).stat().st_size > 0

    ok(paas("backup", "schedule", "rm", "cache"))
    assert not cron_file.exists() and not env_file_path(isolated_home).exists()
    ok(paas("svc", "rm", "cache", "--env", "production", "--yes"))
