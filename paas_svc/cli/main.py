"""The `paas` entry point: assembles the command groups and is the one place that turns
errors into messages and exit codes."""

from __future__ import annotations

import copy
import gc
import os
import signal
import sys

import typer

from paas_svc import __version__

HELP = "Managed services (PostgreSQL, Redis, MongoDB, Meilisearch, MinIO, Mailpit) on your own Docker host."

# Command groups: the modules that register their commands on the group's Typer app
# (data_cmd adds backup/restore/clone/upgrade to svc). Imported only when needed.
GROUPS: dict[str, tuple[str, ...]] = {
    "catalog": ("paas_svc.cli.catalog_cmd",),
    "project": ("paas_svc.cli.project_cmd",),
    "env": ("paas_svc.cli.env_cmd",),
    "svc": ("paas_svc.cli.svc_cmd", "paas_svc.cli.data_cmd", "paas_svc.cli.move_cmd", "paas_svc.cli.operate_cmd"),
    "key": ("paas_svc.cli.key_cmd",),
    "backup": ("paas_svc.cli.backup_cmd",),
    "target": ("paas_svc.cli.target_cmd",),
    "token": ("paas_svc.cli.token_cmd",),
}
# Top-level commands: module, function.
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("paas_svc.cli.audit_cmd", "audit"),
    "doctor": ("paas_svc.cli.doctor_cmd", "doctor"),
    "run": ("paas_svc.cli.run_cmd", "run_command"),
    "tunnel": ("paas_svc.cli.tunnel_cmd", "tunnel"),
    "completion": ("paas_svc.cli.completion_cmd", "completion"),
    "serve": ("paas_svc.cli.serve_cmd", "serve"),
    "login": ("paas_svc.cli.login_cmd", "login"),
    "logout": ("paas_svc.cli.login_cmd", "logout"),
    "whoami": ("paas_svc.cli.login_cmd", "whoami"),
}


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The root app, holding only what `argv` names.

    Typer inspects the signature of every registered command on each call, so `paas svc
    dsn` registers just the svc group's `dsn` (scripts call it often: ~25 ms saved). With
    no argv, an option or an unknown name first, everything is registered, so help texts
    and "No such command" suggestions see all commands.
    """
    import importlib

    first = argv[0] if argv else None
    second = argv[1] if argv and len(argv) > 1 else None
    root = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False,
                       pretty_exceptions_enable=False)  # tracebacks with locals could print secrets
    root.callback()(_root)
    names = [first] if first in GROUPS or first in COMMANDS else [*GROUPS, *COMMANDS]
    for name in names:
        if name in GROUPS:
            wanted = second if name == first else None
            group = importlib.import_module(GROUPS[name][0]).app
            for extra in GROUPS[name][1:]:  # modules adding commands to the group: only when needed
                if wanted is None or not _registers(group, wanted):
                    importlib.import_module(extra)
            root.add_typer(_narrowed(group, wanted), name=name)
        else:
            module_name, function_name = COMMANDS[name]
            module = importlib.import_module(module_name)
            settings = getattr(module, "COMMAND_SETTINGS", {})
            root.command(name, **settings)(getattr(module, function_name))
    return root


def _registers(group: typer.Typer, command: str) -> bool:
    return any(info.name == command for info in group.registered_commands)


def _narrowed(group: typer.Typer, command: str | None) -> typer.Typer:
    """The group with only `command` when argv names one of its commands, else all of it."""
    wanted = [info for info in group.registered_commands if info.name == command]
    if not wanted:
        return group
    narrowed = copy.copy(group)
    narrowed.registered_commands = wanted
    return narrowed


def __getattr__(name: str):
    if name == "app":  # the full app, for tests and tools that walk every command
        return build_app()
    raise AttributeError(name)


def _version(value: bool) -> None:
    if value:
        print(f"paas-svc {__version__}")
        raise typer.Exit()


def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")) -> None:
    """Managed services on your own Docker host."""


def _fail(text: str, hint: str | None, code: int) -> int:
    from paas_svc.cli.output import message  # escapes control characters: errors quote names and engine text

    message(f"error: {text}")
    if hint:
        message(f"hint: {hint}")
    return code


def _command_path(argv: list[str]) -> str:
    """`paas svc add` for ["svc", "add", ...]: the command a generic hint points at."""
    words = ["paas"]
    if argv and (argv[0] in GROUPS or argv[0] in COMMANDS):
        words.append(argv[0])
        if argv[0] in GROUPS and len(argv) > 1 and argv[1][:1].isalpha():
            words.append(argv[1])
    return " ".join(words)


def _help_hint(argv: list[str]) -> str:
    return f"See `{_command_path(argv)} --help`."


# Options of `paas run` that take a value; everything from COMMAND on belongs to COMMAND.
_RUN_VALUE_OPTIONS = {"--project", "-p", "--env", "-e"}


def _own_arguments(argv: list[str]) -> list[str]:
    """The arguments paas itself reads (for `run`, not the command's own arguments)."""
    if not argv or argv[0] != "run":
        return argv
    own, index = [argv[0]], 1
    while index < len(argv) and argv[index] != "--" and argv[index].startswith("-"):
        own.append(argv[index])
        if argv[index] in _RUN_VALUE_OPTIONS and index + 1 < len(argv):
            own.append(argv[index + 1])
            index += 1
        index += 1
    return own


# Commands on a server's services that do not go through the server yet: logged in, they are
# refused (running them on this machine's own state would look like acting on the team's).
NOT_THROUGH_SERVER = {("svc", "clone"), ("svc", "upgrade"), ("svc", "move"), ("svc", "connect"), ("svc", "import"),
                      ("backup", "run-due"), ("backup", "pitr"), ("backup", "notify"), ("backup", "dest"), ("tunnel",)}


# Options that make a command one of those above (`svc restore --to-time`: point-in-time recovery).
NOT_THROUGH_SERVER_OPTIONS = {("svc", "restore"): "--to-time", ("backup", "verify"): "--to-time"}


def _check_not_through_server(argv: list[str]) -> None:
    words = [word for word in argv[:2] if not word.startswith("-")]
    option = NOT_THROUGH_SERVER_OPTIONS.get(tuple(words[:2]))
    if option is not None and any(word == option or word.startswith(option + "=") for word in argv):
        words = [*words[:2], option]
    elif tuple(words[:2]) not in NOT_THROUGH_SERVER and tuple(words[:1]) not in NOT_THROUGH_SERVER:
        return
    if "--help" in argv:
        return
    from paas_svc.cli.remote import logged_in

    remote = logged_in()
    if remote is not None:
        from paas_svc.errors import InvalidInput

        command = " ".join(words[:3] if tuple(words[:1]) not in NOT_THROUGH_SERVER else words[:1])
        raise InvalidInput(f"`paas {command}` does not go through the server yet, and this CLI is logged in to {remote.url}.",
                           hint="Run it on the server's host, or `paas logout` to run it on this machine's own services.")


def _check_text(argv: list[str]) -> None:
    """Names, scopes and paths must be text: bytes that are not UTF-8 (which Python keeps as
    lone surrogates) are refused as invalid input before they reach the database or a file."""
    from paas_svc.errors import InvalidInput

    named = [(f"argument {value.encode('utf-8', 'surrogateescape')!r}", value) for value in _own_arguments(argv)]
    named += [(f"variable ${name}", os.environ[name]) for name in ("PAAS_PROJECT", "PAAS_ENV") if name in os.environ]
    for what, value in named:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"The {what} is not valid UTF-8 text.",
                               hint="Names are lowercase letters, digits and hyphens; paths must be UTF-8.") from None


def _sanitize_columns() -> str | None:
    """COLUMNS is for terminals: ignored when stdout is not one, and held to a readable range
    (COLUMNS=0 printed empty help, COLUMNS=99999999 gigabytes of padding). Returns the value to restore."""
    from paas_svc.cli.render import MAX_WIDTH, MIN_WIDTH, terminal_width

    original = os.environ.get("COLUMNS")
    if original is None:
        return None
    os.environ.pop("COLUMNS")
    try:
        wanted = int(original)
    except ValueError:
        wanted = 0
    if sys.stdout is not None and MIN_WIDTH <= wanted and terminal_width() is not None:
        os.environ["COLUMNS"] = str(min(wanted, MAX_WIDTH))
    return original


class _ClosedStdout:
    """Stands in for a closed stdout (`paas ... >&-`): writing to it is an error we report."""

    encoding = "utf-8"

    @property
    def buffer(self):
        return self

    def write(self, text) -> int:
        import errno

        raise OSError(errno.EBADF, "stdout is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        import io

        raise io.UnsupportedOperation("stdout is closed")


def _output_error(error: OSError) -> int | None:
    """The exit code of an error writing stdout (None when the error is about something else)."""
    import errno

    from paas_svc.errors import ExitCode

    if isinstance(error, BrokenPipeError):
        print("error: the reader of the output went away (broken pipe); the output is incomplete.", file=sys.stderr)
        return ExitCode.BROKEN_PIPE
    if error.errno in (errno.EBADF, errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
        print(f"error: cannot write the output: {error.strerror or error}.", file=sys.stderr)
        return ExitCode.OUTPUT
    return None


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; user errors never show a traceback."""
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    from paas_svc.errors import Declined, ExitCode, Interrupted, PaasError
    from paas_svc.state.home import use_private_umask

    use_private_umask()  # every file we create in the home (db, WAL, key, exports) is 0600
    if "_PAAS_COMPLETE" in os.environ:  # the shell asks for completions (see `paas completion`)
        from paas_svc.cli.completion import prepare

        prepare()
    previous_handlers = _install_interrupt_handlers()
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()
    argv = sys.argv[1:] if argv is None else argv
    columns = _sanitize_columns()
    try:
        _check_text(argv)
        _check_not_through_server(argv)
        result = build_app(argv)(args=argv, prog_name="paas", standalone_mode=False)
        sys.stdout.flush()  # a full device must fail here, with our message, not at interpreter exit
    except Interrupted as error:
        if error.message == "interrupted":
            print("\ninterrupted", file=sys.stderr)
            return error.exit_code
        print(file=sys.stderr)
        return _fail(error.message, error.hint, error.exit_code)
    except Declined as error:  # not an error: the user said no
        from paas_svc.cli.output import message

        message(error.message)
        if error.hint:
            message(f"hint: {error.hint}")
        return error.exit_code
    except PaasError as error:
        return _fail(error.message, error.hint or _help_hint(argv), error.exit_code)
    except NoArgsIsHelpError as error:
        error.show()  # the group's help, on stderr
        return ExitCode.USAGE
    except UsageError as error:  # unknown option or command, missing or bad argument: our own style
        command = error.ctx.command_path if error.ctx is not None else _command_path(argv)
        return _fail(error.format_message(), f"See `{command} --help`.", ExitCode.USAGE)
    except ClickException as error:
        return _fail(error.format_message(), _help_hint(argv), ExitCode.USAGE)
    except (KeyboardInterrupt, typer.Abort):
        print("\ninterrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except SystemExit as error:
        if isinstance(error.__context__, BrokenPipeError):  # Rich's way to end on a broken pipe
            return _output_error(error.__context__)
        raise
    except OSError as error:
        code = _output_error(error)
        if code is None:
            return _internal_error(error)
        return code
    except Exception as error:  # a bug: one line unless PAAS_DEBUG asks for the traceback
        return _internal_error(error)
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        if "paas_svc.cli.state" in sys.modules:
            sys.modules["paas_svc.cli.state"].close_profiles()
        if columns is not None:
            os.environ["COLUMNS"] = columns
    return result if isinstance(result, int) else 0


def _internal_error(error: Exception) -> int:
    from paas_svc.errors import ExitCode

    if os.environ.get("PAAS_DEBUG"):
        raise error
    return _fail(f"internal error: {type(error).__name__}: {error}",
                 "Run again with PAAS_DEBUG=1 for a traceback and report it.", ExitCode.INTERNAL)


def _install_interrupt_handlers() -> dict:
    """Ctrl-C (SIGINT) and SIGTERM (sent by `timeout`, systemd, CI runners) both raise
    Interrupted: the command cleans up what it can, records what it cannot, and exits
    130 or 143."""
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, _raise_interrupted)
        except ValueError:  # not the main thread (embedded use): keep the default behaviour
            break
    return previous


def _raise_interrupted(signum, frame) -> None:
    # Typer turns KeyboardInterrupt into a silent exit 130; our own exception lets the
    # command record what was interrupted and tells the user.
    from paas_svc.errors import Interrupted

    raise Interrupted(signum)


def main() -> None:
    from paas_svc.errors import ExitCode

    code = run()
    if code in (ExitCode.OUTPUT, ExitCode.BROKEN_PIPE):
        _discard_stdout()
    # Freezing what exists lets interpreter shutdown skip its final full collection
    # (~10 ms, a tenth of a `svc dsn`).
    gc.freeze()
    sys.exit(code)


def _discard_stdout() -> None:
    """After stdout failed, point it at /dev/null so the interpreter's final flush cannot
    fail again (and print "Exception ignored" or change the exit code)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
