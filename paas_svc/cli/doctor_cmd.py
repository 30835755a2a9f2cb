"""`paas doctor`."""


from typing import Annotated

import typer

from paas_svc.cli.options import DEFAULT_TIMEOUT, JsonOption, TimeoutOption
from paas_svc.cli.output import StderrReporter, data, message, print_json
from paas_svc.cli.state import open_profile, service_manager


def doctor(json_output: JsonOption = False,
           fix: Annotated[bool, typer.Option("--fix", help="Fix what is safe: file modes, network, stopped or missing containers. Never deletes a volume.")] = False,
           timeout: TimeoutOption = DEFAULT_TIMEOUT) -> None:
    """Check the engine, network, containers, volumes, orphans, file modes, database and ports.

    With --fix, the services to bring back are started in parallel, each waiting at most --timeout seconds."""
    from paas_svc.errors import ExitCode, StateError
    from paas_svc.usecases.doctor import Report, apply_fixes, diagnose
    from paas_svc.usecases.lifecycle import validate_timeout

    validate_timeout(timeout)
    try:
        manager = service_manager(open_profile(), StderrReporter())
    except StateError as error:  # the home or the database cannot even be opened: that is the finding
        report = Report(state_unusable=True)
        report.add("database", False, error.message, fix=error.hint)
    else:
        report = diagnose(manager)
        if fix and not report.state_unusable:
            apply_fixes(manager, report, timeout, on_outcome=_report_outcome)
    if json_output:
        print_json({"ok": not report.problems, "findings": [f.to_json() for f in report.findings]})
    else:
        for finding in report.findings:
            mark = "ok " if finding.ok else ("FIXED" if finding.fixed else "FAIL")
            data(f"[{mark}] {finding.check}: {finding.message}")
            if not finding.ok and not finding.fixed and finding.fix:
                data(f"        fix: {finding.fix}" + ("  (paas doctor --fix does this)" if finding.action and not fix else ""))
            if finding.fix_error:
                data(f"        --fix failed: {finding.fix_error}")
        data(f"{len(report.problems)} problem(s) found." if report.problems else "Everything is in order.")
    if report.problems:
        raise typer.Exit(ExitCode.STATE if report.state_unusable else ExitCode.UNHEALTHY)


def _report_outcome(finding) -> None:
    """Each fix as it ends, on stderr (the findings on stdout say it again at the end)."""
    if finding.fixed:
        message(f"- fixed: {finding.message}")
    else:
        message(f"- could not fix: {finding.message}: {finding.fix_error}")
