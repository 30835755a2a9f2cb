"""`paas env export -o` and `paas run` where no service is needed: output path errors, the
command's exit code, its own options, signals passed on. No engine (exports of real services
are tests/engine/test_export.py)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.support.cli import PAAS_BIN

# -- -o ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["missing-folder/app.env", "a-file/app.env", "a-folder"])
def test_output_path_errors_are_clean_usage_errors(paas, tmp_path, where):
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    target = tmp_path / where
    result = paas("env", "export", "-o", str(target))
    assert result.exit_code == 2, result.output
    assert str(target) in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# A read-only folder (even for root) is covered by tests/unit/test_bad_input.py::test_export_into_read_only_dir.


# -- paas run --------------------------------------------------------------------------------

@pytest.mark.parametrize("command, code", [
    (["sh", "-c", "exit 7"], 7),
    (["sh", "-c", "exit 0"], 0),
    (["false"], 1),
    (["sh", "-c", "kill -TERM $$"], 128 + signal.SIGTERM),
    (["no-such-command-paas-test"], 127),
    (["/etc/passwd"], 126),
])
def test_run_exits_with_the_command_exit_code(paas_process, command, code):
    result = paas_process("run", "--", *command)
    assert result.exit_code == code, result.output


def test_run_options_after_the_command_belong_to_the_command(paas_process):
    result = paas_process("run", "sh", "-c", 'printf "%s|" "$@"', "argv0", "--env", "x", "--", "-e")
    assert (result.exit_code, result.stdout) == (0, "--env|x|--|-e|"), result.output


def test_run_without_a_command_is_a_usage_error(paas_process):
    result = paas_process("run")
    assert result.exit_code == 2
    assert "No command" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_run_passes_signals_to_the_command(paas_process, signum):
    name = signal.Signals(signum).name[3:]
    script = f'trap "exit 42" {name}; echo ready; while :; do sleep 0.1; done'
    # A new session: no controlling terminal, so a SIGINT is for paas alone and must be forwarded.
    process = subprocess.Popen([PAAS_BIN, "run", "--", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signum)
        assert process.wait(timeout=30) == 42, process.stderr.read()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
