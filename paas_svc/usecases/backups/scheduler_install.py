"""The host's scheduler entry that calls `paas backup run-due` every minute for this profile:
a systemd timer (+ service) where systemd is PID 1, else a cron entry (/etc/cron.d for root,
the user's crontab otherwise). Installed with the first schedule, removed with the last.

PAAS_SCHEDULER=systemd|cron|none forces a kind; PAAS_SYSTEMD_DIR and PAAS_CRON_DIR put the
files in another folder (tests: nothing then talks to systemctl or crontab).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from paas_svc.errors import PaasError

CRON_SYSTEM_DIR = Path("/etc/cron.d")
SYSTEMD_SYSTEM_DIR = Path("/etc/systemd/system")
LOG_FOLDER = "logs"


class SchedulerError(PaasError):
    pass


@dataclass
class SchedulerEntry:
    kind: str  # systemd | cron-file | crontab | none
    paths: list[Path]
    note: str


def unit_name(profile_id: str) -> str:
    return f"paas-backup-{profile_id}"


def run_due_argv() -> list[str]:
    """The command the timer runs: this interpreter and this paas, whatever PATH the timer has."""
    return [sys.executable, "-m", "paas_svc", "backup", "run-due"]


def detect_kind() -> str:
    forced = os.environ.get("PAAS_SCHEDULER")
    if forced:
        return forced
    try:
        if Path("/proc/1/comm").read_text().strip() == "systemd":
            return "systemd"
    except OSError:
        pass
    return "cron"


# -- systemd ------------------------------------------------------------------------------

def _systemd_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def systemd_units(home: Path, profile_id: str, argv: list[str] | None = None) -> dict[str, str]:
    """{file name: content} of the service and timer units."""
    name = unit_name(profile_id)
    command = " ".join(_systemd_quote(part) for part in (argv or run_due_argv()))
    service = (
        "[Unit]\n"
        f"Description=paas-svc scheduled backups (profile {profile_id})\n"
        "After=docker.service\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"Environment={_systemd_quote('PAAS_HOME=' + str(home))}\n"
        "UMask=0077\n"
        f"ExecStart={command}\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=Run due paas-svc backups every minute (profile {profile_id})\n\n"
        "[Timer]\n"
        "OnCalendar=*-*-* *:*:00\n"
        "AccuracySec=1s\n"
        "Persistent=true\n\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def _systemd_dir() -> tuple[Path, bool, list[str]]:
    """(unit folder, whether to call systemctl, systemctl's scope arguments)."""
    override = os.environ.get("PAAS_SYSTEMD_DIR")
    if override:
        return Path(override), False, []
    if os.geteuid() == 0:
        return SYSTEMD_SYSTEM_DIR, True, []
    return Path.home() / ".config" / "systemd" / "user", True, ["--user"]


def _systemctl(scope: list[str], *args: str) -> None:
    result = subprocess.run(["systemctl", *scope, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SchedulerError(f"systemctl {' '.join(args)} failed: {result.stderr.strip()}",
                             hint="Run `paas backup run-due` from your own scheduler every minute instead.")


# -- cron ---------------------------------------------------------------------------------

def cron_command(home: Path, argv: list[str] | None = None) -> str:
    log = home / LOG_FOLDER / "run-due.log"
    command = (f"umask 077; mkdir -p {shlex.quote(str(log.parent))}; PAAS_HOME={shlex.quote(str(home))} exec "
               + " ".join(shlex.quote(part) for part in (argv or run_due_argv()))
               + f" >>{shlex.quote(str(log))} 2>&1")
    return command.replace("%", "\\%")  # cron turns a bare % into a newline


def cron_file(home: Path, profile_id: str, user: str, argv: list[str] | None = None) -> str:
    return (f"# paas-svc scheduled backups for PAAS_HOME={home} (profile {profile_id}); managed by paas, removed with the last schedule\n"
            "SHELL=/bin/sh\n"
            f"* * * * * {user} {cron_command(home, argv)}\n")


def _marker(profile_id: str) -> tuple[str, str]:
    return f"# BEGIN paas-svc backups {profile_id}", f"# END paas-svc backups {profile_id}"


def _crontab_without(text: str, profile_id: str) -> str:
    begin, end = _marker(profile_id)
    lines, skipping = [], False
    for line in text.splitlines():
        if line == begin:
            skipping = True
        elif line == end:
            skipping = False
        elif not skipping:
            lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def _cron_target() -> Path | None:
    """The cron.d-style folder to write, or None for the user's crontab."""
    override = os.environ.get("PAAS_CRON_DIR")
    if override:
        return Path(override)
    if os.geteuid() == 0 and CRON_SYSTEM_DIR.is_dir():
        return CRON_SYSTEM_DIR
    return None


def user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


# -- install / remove ----------------------------------------------------------------------

def install(home: Path, profile_id: str) -> SchedulerEntry:
    kind = detect_kind()
    if kind == "none":
        return SchedulerEntry("none", [], "PAAS_SCHEDULER=none: run `paas backup run-due` every minute yourself.")
    if kind == "systemd":
        folder, call, scope = _systemd_dir()
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for file_name, content in systemd_units(home, profile_id).items():
            path = folder / file_name
            path.write_text(content)
            os.chmod(path, 0o644)  # systemd reads units as any user may
            paths.append(path)
        if call:
            _systemctl(scope, "daemon-reload")
            _systemctl(scope, "enable", "--now", f"{unit_name(profile_id)}.timer")
        return SchedulerEntry("systemd", paths, f"systemd timer {unit_name(profile_id)}.timer runs `paas backup run-due` every minute")
    folder = _cron_target()
    if folder is not None:
        path = folder / unit_name(profile_id)
        path.write_text(cron_file(home, profile_id, user_name()))
        os.chmod(path, 0o644)  # cron ignores group/other-writable files
        return SchedulerEntry("cron-file", [path], f"cron entry {path} runs `paas backup run-due` every minute")
    if shutil.which("crontab") is None:
        raise SchedulerError("Neither systemd nor cron runs here, so paas cannot install its timer.",
                             hint="Run `paas backup run-due` every minute from your own scheduler (PAAS_SCHEDULER=none silences this).")
    begin, end = _marker(profile_id)
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    updated = _crontab_without(current, profile_id) + f"{begin}\n* * * * * {cron_command(home)}\n{end}\n"
    subprocess.run(["crontab", "-"], input=updated, text=True, check=True)
    return SchedulerEntry("crontab", [], f"an entry in {user_name()}'s crontab runs `paas backup run-due` every minute")


def remove(home: Path, profile_id: str) -> SchedulerEntry:
    kind = detect_kind()
    if kind == "none":
        return SchedulerEntry("none", [], "")
    if kind == "systemd":
        folder, call, scope = _systemd_dir()
        if call:
            subprocess.run(["systemctl", *scope, "disable", "--now", f"{unit_name(profile_id)}.timer"], capture_output=True)
        paths = [folder / name for name in systemd_units(home, profile_id)]
        for path in paths:
            path.unlink(missing_ok=True)
        if call:
            subprocess.run(["systemctl", *scope, "daemon-reload"], capture_output=True)
        return SchedulerEntry("systemd", paths, f"removed the systemd timer {unit_name(profile_id)}.timer")
    folder = _cron_target()
    if folder is not None:
        path = folder / unit_name(profile_id)
        path.unlink(missing_ok=True)
        return SchedulerEntry("cron-file", [path], f"removed the cron entry {path}")
    if shutil.which("crontab") is None:
        return SchedulerEntry("none", [], "")
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    subprocess.run(["crontab", "-"], input=_crontab_without(current, profile_id), text=True, check=True)
    return SchedulerEntry("crontab", [], f"removed the entry from {user_name()}'s crontab")


def installed(home: Path, profile_id: str) -> bool:
    kind = detect_kind()
    if kind == "none":
        return True
    if kind == "systemd":
        folder, _, _ = _systemd_dir()
        return (folder / f"{unit_name(profile_id)}.timer").exists()
    folder = _cron_target()
    if folder is not None:
        return (folder / unit_name(profile_id)).exists()
    if shutil.which("crontab") is None:
        return False
    return _marker(profile_id)[0] in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout


def sync(home: Path, profile_id: str, schedule_count: int) -> SchedulerEntry | None:
    """Install with the first schedule, remove with the last; None when nothing changed."""
    present = installed(home, profile_id)
    if schedule_count and not present:
        return install(home, profile_id)
    if not schedule_count and present and detect_kind() != "none":
        return remove(home, profile_id)
    return None
