"""Shell completion: the scripts, and what the shell gets back for commands, templates,
environments and slugs (the `paas` script run as bash/zsh/fish run it)."""

import pytest

from paas_svc.state.models import READY, ServiceRecord
from tests.support.cli import run_paas, run_paas_process


def _complete(shell: str, words: str) -> list[str]:
    if shell == "bash":
        parts = words.split(" ")
        env = {"COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1), "_PAAS_COMPLETE": "complete_bash"}
    else:
        env = {"_TYPER_COMPLETE_ARGS": words, "_PAAS_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    result = run_paas_process(env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def one_service():
    from paas_svc.cli.state import open_profile

    profile = open_profile()
    environment = profile.store.get_environment("default", "staging")
    profile.store.insert_service(ServiceRecord(
        id="a1b2c3d4e5f6", project="default", env="staging", env_id=environment.id, slug="feature-flags",
        template="redis-7", image="redis:7-alpine", spec={"port": 6379}, secret=profile.vault.encrypt({"password": "x" * 32}),
        host_ports={6379: 49999}, status=READY))
    profile.store.close()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_scripts_name_the_completion_variable(shell):
    result = run_paas("completion", shell)
    assert result.exit_code == 0, result.output
    assert "_PAAS_COMPLETE=complete_" + shell in result.stdout


def test_unknown_shell_is_invalid_input():
    result = run_paas("completion", "tcsh")
    assert result.exit_code == 2 and "bash, zsh, fish" in result.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completes_commands_templates_envs_and_slugs(shell, one_service):
    assert "rotate-password" in _complete(shell, "paas svc ")
    assert "redis-7" in _complete(shell, "paas svc add x --template re")
    assert "staging" in _complete(shell, "paas env export --env st")
    assert "feature-flags" in _complete(shell, "paas svc dsn fe")
    assert "feature-flags" not in _complete(shell, "paas svc dsn --env production ")


def test_completion_without_a_home_creates_nothing(isolated_home):
    assert _complete("bash", "paas svc dsn ").strip() == ""
    assert not isolated_home.exists()
