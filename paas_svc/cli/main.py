"""The `paas` entry point: assembles the command groups and is the one place that turns
errors into messages and exit codes."""

from __future__ import annotations

import os
import signal
import sys

import typer

from paas_svc import __version__
from paas_svc.cli import audit_cmd, catalog_cmd, doctor_cmd, env_cmd, key_cmd, project_cmd, run_cmd, svc_cmd
from paas_svc.cli import data_cmd  # noqa: F401  (registers svc backup/restore/clone/upgrade)

app = typer.Typer(
    help="Managed services (PostgreSQL, Redis, MongoDB, Meilisearch, MinIO, Mailpit) on your own Docker host.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # tracebacks with locals could print secrets
)
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(project_cmd.app, name="project")
app.add_typer(env_cmd.app, name="env")
app.add_typer(svc_cmd.app, name="svc")
app.add_typer(key_cmd.app, name="key")
app.command("audit")(audit_cmd.audit)
app.command("doctor")(doctor_cmd.doctor)
app.command("run", context_settings=run_cmd.CONTEXT_SETTINGS, options_metavar=run_cmd.OPTIONS_METAVAR)(run_cmd.run_command)


def _version(value: bool) -> None:
    if value:
        print(f"paas-svc {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")) -> None:
    """Managed services on your own Docker host."""


def _fail(text: str, hint: str | None, code: int) -> int:
    print(f"error: {text}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; user errors never show a traceback."""
    from typer._click import ClickException

    from paas_svc.errors import ExitCode, Interrupted, PaasError

    os.umask(0o077)  # every file we create in the home (db, WAL, key, exports) is 0600
    previous_handler = _install_interrupt_handler()
    try:
        result = app(args=argv, prog_name="paas", standalone_mode=False)
    except Interrupted:
        print("\ninterrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except PaasError as error:
        return _fail(error.message, error.hint, error.exit_code)
    except ClickException as error:
        error.show()
        return error.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print("\ninterrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as error:  # a bug: one line unless PAAS_DEBUG asks for the traceback
        if os.environ.get("PAAS_DEBUG"):
            raise
        return _fail(f"internal error: {type(error).__name__}: {error}",
                     "Run again with PAAS_DEBUG=1 for a traceback and report it.", ExitCode.INTERNAL)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    return result if isinstance(result, int) else 0


def _install_interrupt_handler():
    try:
        return signal.signal(signal.SIGINT, _raise_interrupted)
    except ValueError:  # not the main thread (embedded use): keep the default behaviour
        return None


def _raise_interrupted(signum, frame) -> None:
    # Typer turns KeyboardInterrupt into a silent exit 130; our own exception lets the
    # command record what was interrupted and tells the user.
    from paas_svc.errors import Interrupted

    raise Interrupted()


def main() -> None:
    sys.exit(run())
