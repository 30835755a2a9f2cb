"""The host's scheduler entry (issue 20, items 5 and 6): what reaches it and what never may.

The real renderers (systemd units, cron file, crontab command, env file), the real `backup
schedule` command on a real state database (tests/support/state.py writes the service row),
and the env file read back by a real `python -m` process, as the timer's run reads it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from paas_svc.errors import ExitCode, InvalidInput, StateError
from paas_svc.usecases.backups import scheduler_install
from paas_svc.usecases.backups.scheduler_install import (
    PASSED_VARIABLES,
    apply_env_file,
    cron_command,
    cron_file,
    entry_environment,
    env_file_path,
    read_env_file,
    render_env_file,
    systemd_units,
)
from tests.support.state import stored_service

# A line break, a carriage return, an escape, Unicode's line separator, a bidi override, DEL.
CONTROL = ["\n", "\r", "\x1b", "\u2028", "\u202e", "\x7f"]
INJECTED = "* * * * * root touch pwned"


@pytest.fixture(autouse=True)
def clean_passed_variables(monkeypatch):
    """This machine's own DOCKER_HOST, proxies or CA bundle would be kept too: each test sets its own."""
    for name in PASSED_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _refused(call) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call()
    error = caught.value
    assert error.exit_code == ExitCode.USAGE == 2
    assert "control character" in error.message
    assert not any(char in error.message + (error.hint or "") for char in CONTROL), error.message  # never printed raw
    return error


def _cron_lines(cron_dir: Path) -> list[str]:
    return [line for path in cron_dir.iterdir() for line in path.read_text().splitlines()]


# -- item 6: the renderers refuse control characters ----------------------------------------

@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_every_renderer_refuses_a_control_character_in_the_home(tmp_path, char):
    home = tmp_path / f"home{char}{INJECTED}"
    error = _refused(lambda: systemd_units(home, "abc123"))
    assert "PAAS_HOME" in error.message and repr(char)[1:-1] in error.message  # shown escaped
    _refused(lambda: cron_file(home, "abc123", "root"))
    _refused(lambda: cron_command(home))  # the crontab block's command


@pytest.mark.parametrize("char", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_every_renderer_refuses_a_control_character_in_the_interpreter_path(tmp_path, char):
    argv = [f"/opt/py{char}{INJECTED}/python3", "-m", "paas_svc", "backup", "run-due"]
    assert "interpreter" in _refused(lambda: systemd_units(tmp_path, "abc123", argv)).hint
    _refused(lambda: cron_file(tmp_path, "abc123", "root", argv))
    _refused(lambda: cron_command(tmp_path, argv))


def test_the_cron_file_refuses_a_control_character_in_the_user_and_the_profile_id(tmp_path):
    _refused(lambda: cron_file(tmp_path, "abc123", f"root\n{INJECTED}"))
    _refused(lambda: cron_file(tmp_path, "abc\n123", "root"))
    _refused(lambda: systemd_units(tmp_path, "abc\n123"))


def test_the_env_file_refuses_a_control_character_in_a_value_and_never_shows_a_key(tmp_path):
    error = _refused(lambda: render_env_file({"DOCKER_HOST": "unix:///run/docker.sock\nPAAS_MASTER_KEY=x"}, "abc123"))
    assert "$DOCKER_HOST" in error.message
    secret = "k3y-material-that-must-not-show"
    error = _refused(lambda: render_env_file({"PAAS_MASTER_KEY": f"{secret}\x1b[31m"}, "abc123"))
    assert secret not in error.message and "$PAAS_MASTER_KEY" in error.message
    error = _refused(lambda: entry_environment(tmp_path, {"PAAS_BACKUP_KEY": f"{secret}\rX"}, store_keys=True))
    assert secret not in error.message
    with pytest.raises(InvalidInput):
        render_env_file({"LD_PRELOAD": "/tmp/x.so"}, "abc123")  # only the variables paas passes


def test_clean_values_render_one_line_each(tmp_path):
    home = tmp_path / "home 50% $HOME"
    service = systemd_units(home, "abc123")["paas-backup-abc123.service"]
    assert f'"--env-file" "{str(env_file_path(home)).replace("%", "%%").replace("$", "$$")}"' in service
    [line] = [line for line in cron_file(home, "abc123", "root").splitlines() if line.startswith("* * * * *")]
    assert "--env-file" in line
    text = render_env_file({"DOCKER_HOST": "tcp://10.0.0.5:2376", "DOCKER_CERT_PATH": "/etc/certs with space"}, "abc123")
    assert text.splitlines()[2:] == ["DOCKER_HOST=tcp://10.0.0.5:2376", "DOCKER_CERT_PATH=/etc/certs with space"]


def test_schedule_with_a_newline_in_paas_home_is_refused_and_stores_nothing(tmp_path, monkeypatch, paas):
    home = tmp_path / f"home\n{INJECTED}"
    monkeypatch.setenv("PAAS_HOME", str(home))
    stored_service(home)
    result = paas("backup", "schedule", "cache", "--every", "daily")
    assert result.exit_code == 2, result.output
    assert "control character" in result.stderr and "\\n" in result.stderr
    assert list((tmp_path / "cron.d").iterdir()) == []
    assert not env_file_path(home).exists()
    assert "No backup schedules" in paas("backup", "schedule", "list").stderr


def test_a_schedule_whose_every_holds_a_line_break_is_stored_on_one_line(tmp_path, paas, isolated_home):
    stored_service(isolated_home)
    result = paas("backup", "schedule", "cache", "--every", "30\n2 * * *", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["every"] == "30 2 * * *"


# -- item 5: what the timer's run gets ---------------------------------------------------------

def test_keys_given_by_variable_need_store_keys_and_other_variables_pass(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    environ = {"PAAS_MASTER_KEY": "master-key-text", "DOCKER_HOST": "unix:///run/other.sock", "PAAS_NOW": "2026-01-01T00:00:00Z",
               "PAAS_PROJECT": "shop", "AWS_SECRET_ACCESS_KEY": "aws-secret", "HTTPS_PROXY": "http://proxy:3128"}
    error = _refused_key(lambda: entry_environment(home, environ))
    assert "$PAAS_MASTER_KEY" in error.message and "master key" in error.message
    assert "--store-keys" in error.hint and "PAAS_SCHEDULER=none" in error.hint and str(env_file_path(home)) in error.hint
    assert "master-key-text" not in error.message + error.hint
    kept = entry_environment(home, environ, store_keys=True)
    assert kept == {"PAAS_MASTER_KEY": "master-key-text", "DOCKER_HOST": "unix:///run/other.sock", "HTTPS_PROXY": "http://proxy:3128"}
    # The same key as the home's key file: the timer reads the file, nothing to keep.
    (home / "master.key").write_text("master-key-text\n")
    assert "PAAS_MASTER_KEY" not in entry_environment(home, environ)
    # A backup key by variable: refused alone, and the message says what would go wrong.
    error = _refused_key(lambda: entry_environment(home, {"PAAS_BACKUP_KEY": "paas-backup-key-1:abc"}))
    assert "$PAAS_BACKUP_KEY" in error.message and "another backup key" in error.message


def _refused_key(call) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.exit_code == 2
    return caught.value


def test_refused_without_store_keys_then_kept_in_a_0600_file_only(tmp_path, monkeypatch, paas, isolated_home):
    from paas_svc.secrets.box import new_key

    key = new_key().decode()
    monkeypatch.setenv("PAAS_MASTER_KEY", key)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/first.sock")
    stored_service(isolated_home)
    assert not (isolated_home / "master.key").exists()
    cron_dir = tmp_path / "cron.d"

    refused = paas("backup", "schedule", "cache", "--every", "hourly")
    assert refused.exit_code == 2, refused.output
    assert "--store-keys" in refused.stderr and key not in refused.output
    assert list(cron_dir.iterdir()) == [] and not env_file_path(isolated_home).exists()
    assert "No backup schedules" in paas("backup", "schedule", "list").stderr

    stored = paas("backup", "schedule", "cache", "--every", "hourly", "--store-keys")
    assert stored.exit_code == 0, stored.output
    path = env_file_path(isolated_home)
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert read_env_file(path) == {"PAAS_MASTER_KEY": key, "DOCKER_HOST": "unix:///run/first.sock"}
    assert all(key not in line for line in _cron_lines(cron_dir))
    assert any(f"--env-file {path}" in line for line in _cron_lines(cron_dir))

    # Another DOCKER_HOST, a later schedule: the env file follows (the key kept: consent given before).
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/second.sock")
    again = paas("backup", "schedule", "cache", "--every", "daily")
    assert again.exit_code == 0, again.output
    assert "updated" in again.stderr and str(path) in again.stderr
    assert read_env_file(path) == {"PAAS_MASTER_KEY": key, "DOCKER_HOST": "unix:///run/second.sock"}
    assert not [p.name for p in isolated_home.iterdir() if p.name.startswith(".scheduler.env")]  # no temp file left

    # The last schedule gone: entry and env file gone.
    assert paas("backup", "schedule", "rm", "cache").exit_code == 0
    assert list(cron_dir.iterdir()) == [] and not path.exists()


def test_a_key_that_cannot_open_the_credentials_is_refused_before_anything_is_stored(tmp_path, monkeypatch, paas, isolated_home):
    from paas_svc.secrets.box import new_key

    stored_service(isolated_home)  # encrypted under the home's master.key
    monkeypatch.setenv("PAAS_MASTER_KEY", new_key().decode())  # another key
    result = paas("backup", "schedule", "cache", "--every", "daily", "--store-keys")
    assert result.exit_code == ExitCode.SECRETS, result.output
    assert list((tmp_path / "cron.d").iterdir()) == [] and not env_file_path(isolated_home).exists()


def test_an_older_entry_without_the_env_file_is_rewritten_by_the_next_schedule(tmp_path, paas, isolated_home):
    stored_service(isolated_home)
    assert paas("backup", "schedule", "cache", "--every", "daily").exit_code == 0
    [entry] = list((tmp_path / "cron.d").iterdir())
    entry.write_text(entry.read_text().replace(f" --env-file {env_file_path(isolated_home)}", ""))  # as paas wrote it before
    result = paas("backup", "schedule", "cache", "--every", "hourly")
    assert result.exit_code == 0, result.output
    assert "updated" in result.stderr and "--env-file" in entry.read_text()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o644


def test_the_run_takes_exactly_the_kept_environment(tmp_path):
    """apply_env_file in a real process: the kept values set, the passed variables it does not
    name unset (a stale DOCKER_CERT_PATH of the timer's own environment does not leak in)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    scheduler_install._write_env_file(home, "abc123", {"DOCKER_HOST": "unix:///run/kept.sock", "PAAS_BACKUP_KEY": "bk"})  # noqa: SLF001
    script = ("import json, os, sys; from pathlib import Path; "
              "from paas_svc.usecases.backups.scheduler_install import PASSED_VARIABLES, apply_env_file; "
              "apply_env_file(Path(sys.argv[1])); print(json.dumps({n: os.environ.get(n) for n in PASSED_VARIABLES + ('PATH',)}))")
    env = {"PATH": "/usr/bin:/bin", "DOCKER_CERT_PATH": "/stale/certs", "DOCKER_HOST": "tcp://stale:2375"}
    out = subprocess.run([sys.executable, "-c", script, str(env_file_path(home))], env=env, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen.pop("PATH") == "/usr/bin:/bin"
    assert seen == {name: {"DOCKER_HOST": "unix:///run/kept.sock", "PAAS_BACKUP_KEY": "bk"}.get(name) for name in PASSED_VARIABLES}


def test_an_env_file_others_can_write_or_a_line_paas_did_not_write_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    path = env_file_path(home)
    with pytest.raises(StateError):
        apply_env_file(path)  # missing: says to schedule again
    scheduler_install._write_env_file(home, "abc123", {"DOCKER_HOST": "unix:///run/kept.sock"})  # noqa: SLF001
    os.chmod(path, 0o620)
    with pytest.raises(StateError, match="0600"):
        read_env_file(path)
    os.chmod(path, 0o600)
    with path.open("a") as handle:
        handle.write("LD_PRELOAD=/tmp/evil.so\n")
    with pytest.raises(StateError, match="line 4"):
        read_env_file(path)


def test_with_no_host_scheduler_a_key_variable_is_not_refused_and_nothing_is_kept(monkeypatch, paas, isolated_home):
    """PAAS_SCHEDULER=none (the refusal's second fix): the user's own scheduler gives the key."""
    from paas_svc.secrets.box import new_key

    monkeypatch.setenv("PAAS_MASTER_KEY", new_key().decode())
    monkeypatch.setenv("PAAS_SCHEDULER", "none")
    stored_service(isolated_home)
    result = paas("backup", "schedule", "cache", "--every", "daily")
    assert result.exit_code == 0, result.output
    assert not env_file_path(isolated_home).exists()


def test_a_systemd_unit_names_the_env_file_and_holds_no_key(tmp_path, monkeypatch, isolated_home):
    from paas_svc.state.home import ensure_home

    monkeypatch.setenv("PAAS_SCHEDULER", "systemd")
    monkeypatch.setenv("PAAS_SYSTEMD_DIR", str(tmp_path / "units"))
    home = ensure_home(isolated_home)
    entry = scheduler_install.sync(home, "abc123", 1, {"PAAS_MASTER_KEY": "the-master-key", "DOCKER_HOST": "unix:///x.sock"})
    assert entry is not None and entry.kind == "systemd"
    units = "".join(path.read_text() for path in entry.paths)
    assert "the-master-key" not in units and "DOCKER_HOST" not in units
    assert f'"--env-file" "{env_file_path(home)}"' in units
    assert read_env_file(env_file_path(home))["PAAS_MASTER_KEY"] == "the-master-key"
    assert scheduler_install.sync(home, "abc123", 1, {"PAAS_MASTER_KEY": "the-master-key", "DOCKER_HOST": "unix:///x.sock"}) is None


def test_a_cron_folder_that_does_not_exist_yet_is_made_and_one_that_cannot_be_is_a_clear_error(tmp_path, monkeypatch,
                                                                                                 isolated_home):
    from paas_svc.errors import PaasError

    folder = tmp_path / "new" / "cron.d"
    monkeypatch.setenv("PAAS_CRON_DIR", str(folder))
    entry = scheduler_install.install(isolated_home, "0123456789ab")
    [written] = entry.paths
    assert written.parent == folder and stat.S_IMODE(written.stat().st_mode) == 0o644
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("PAAS_CRON_DIR", str(tmp_path / "a-file" / "cron.d"))  # under a file: no folder can be made
    with pytest.raises(PaasError) as refused:
        scheduler_install.install(isolated_home, "0123456789ab")
    assert "Cannot write the host's timer file" in refused.value.message and "PAAS_SCHEDULER=none" in refused.value.hint


def test_removing_the_last_backup_schedule_keeps_the_timer_a_tls_service_needs(tmp_path, paas, isolated_home):
    """The timer also renews TLS certificates (and ships WAL): the last schedule's rm must not take it away."""
    from paas_svc.state.store import open_store

    service = stored_service(isolated_home)
    assert paas("backup", "schedule", "cache", "--every", "daily").exit_code == 0
    [entry] = list((tmp_path / "cron.d").iterdir())
    store = open_store(isolated_home)
    try:
        store.set_spec(service.id, {**service.spec, "tls": "required"})
    finally:
        store.close()
    removed = paas("backup", "schedule", "rm", "cache")
    assert removed.exit_code == 0, removed.output
    assert entry.exists(), "the timer went with the last schedule although a TLS service needs it"
