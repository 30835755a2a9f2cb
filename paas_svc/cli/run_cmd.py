"""`paas run -- COMMAND [ARGS...]`: run a command with the environment's {SLUG}_URL variables."""


import os
import signal
import subprocess
from typing import Mapping

import typer

from paas_svc.cli.env_cmd import ExportEnvOption, NetworkOption, StrictOption
from paas_svc.cli.options import ProjectOption
from paas_svc.cli.output import message
from paas_svc.state.home import caller_umask

# The command's own options must not be parsed as ours: option parsing stops at the
# first word of COMMAND (or at `--`), and everything from there on is handed to it.
CONTEXT_SETTINGS = {"allow_extra_args": True, "allow_interspersed_args": False}
OPTIONS_METAVAR = "[OPTIONS] [--] COMMAND [ARGS]..."
# How main.build_app registers this command.
COMMAND_SETTINGS = {"context_settings": CONTEXT_SETTINGS, "options_metavar": OPTIONS_METAVAR}

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
NETWORK_VARIABLE = "PAAS_NETWORK"  # with --network: the Docker network the variables' host names are on
CA_MOUNT_VARIABLE = "PAAS_CA_MOUNT"  # with --network and a TLS service: HOST_FILE:/paas-tls/ca.crt:ro for `docker run -v`


def run_command(ctx: typer.Context, project: ProjectOption = None, env: ExportEnvOption = None,
                network: NetworkOption = False, strict: StrictOption = False) -> None:
    """Run COMMAND with {SLUG}_URL of every Ready service added to its environment; exit with its code.

    Variables already set with the same name are overridden. SIGINT, SIGTERM and SIGHUP are passed on to COMMAND.
    """
    from paas_svc.cli.env_cmd import ready_variables
    from paas_svc.errors import InvalidInput

    command = list(ctx.args)
    if not command:
        raise InvalidInput("No command to run.", hint="Usage: paas run [--env E] [--network] -- COMMAND [ARGS...]")
    view = "network" if network else "host"
    _, _, variables, network_name, ca_mount = ready_variables(project, env, network, strict, purpose=f"run view={view}",
                                                              left_out_of="the environment of the command")
    if network:  # where a container must be to reach them: `docker run --network "$PAAS_NETWORK" ...`
        variables = {**variables, NETWORK_VARIABLE: network_name}
        if ca_mount:  # a TLS service's CA file for the app's container: `docker run -v "$PAAS_CA_MOUNT" ...`
            variables[CA_MOUNT_VARIABLE] = ca_mount
    raise typer.Exit(run_with_signals(command, child_environment(os.environ, variables)))


def child_environment(parent: Mapping[str, str], variables: dict[str, str]) -> dict[str, str]:
    """The command's environment: ours with the variables added, minus the master key (the command
    gets the connection strings it needs, never what decrypts every credential)."""
    from paas_svc.secrets.keyfile import ENV_VAR

    environment = {**parent, **variables}
    environment.pop(ENV_VAR, None)
    return environment


def run_with_signals(command: list[str], environment: dict[str, str]) -> int:
    """Run `command` to its end, forwarding our signals; its exit code (128+N when killed by signal N)."""
    child: subprocess.Popen | None = None
    pending: list[int] = []

    def forward(signum, _frame) -> None:
        if child is None:
            pending.append(signum)  # arrived between installing the handlers and starting the child
        elif not (signum == signal.SIGINT and _terminal_delivers_sigint()):
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        try:
            child = subprocess.Popen(command, env=environment, umask=caller_umask())  # paas's own umask is 077
        except FileNotFoundError:
            message(f"error: command not found: {command[0]}")
            return EXIT_NOT_FOUND
        except OSError as error:  # not executable, a directory, bad format
            message(f"error: cannot execute {command[0]}: {error.strerror or error}")
            return EXIT_NOT_EXECUTABLE
        for signum in pending:
            child.send_signal(signum)
        returncode = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - returncode if returncode < 0 else returncode


def _terminal_delivers_sigint() -> bool:
    """True when we run in the foreground of our terminal: then Ctrl-C reached the whole
    process group, the child included, and forwarding it would deliver SIGINT twice."""
    try:
        tty = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False  # no controlling terminal: the signal was sent to us alone
    try:
        return os.tcgetpgrp(tty) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(tty)
