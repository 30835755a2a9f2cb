"""The host's scheduler entry that calls `paas backup run-due` every minute for this profile:
a systemd timer (+ service) where systemd is PID 1, else a cron entry (/etc/cron.d for root,
the user's crontab otherwise). Installed with the first schedule, removed with the last.

PAAS_SCHEDULER=systemd|cron|none forces a kind; PAAS_SYSTEMD_DIR and PAAS_CRON_DIR put the
files in another folder (tests: nothing then talks to systemctl or crontab).

The timer runs without the environment of the shell that ran `backup schedule`, so the
variables the profile needs there (PASSED_VARIABLES) are kept in PAAS_HOME/scheduler.env
(0600, written atomically) and `run-due --env-file` reads them: never the unit, the cron line
or an argv, which other users can read. Keys given by variable ($PAAS_MASTER_KEY,
$PAAS_BACKUP_KEY) are kept there only with --store-keys: the user chose to keep them out of
the home, and the env file is in the home.

Whatever reaches an entry (the home, the interpreter's path, the user, the env file's values)
is refused when it holds a control character: a line break would write a line of its own into
/etc/cron.d or the unit.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from paas_svc.errors import InvalidInput, PaasError, StateError

CRON_SYSTEM_DIR = Path("/etc/cron.d")
SYSTEMD_SYSTEM_DIR = Path("/etc/systemd/system")
LOG_FOLDER = "logs"
ENV_FILE = "scheduler.env"
ENV_FILE_OPTION = "--env-file"

# What the scheduled run takes from the environment `backup schedule` ran in, and why.
# Which engine is `local` and how to reach it (status.local_endpoint, the SDK's from_env):
ENGINE_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "PAAS_ENGINE_CLIENT")
# How boto3 reaches an S3 destination from this host:
NETWORK_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "AWS_CA_BUNDLE")
# Keys the user keeps out of the home's key files (kept for the timer only with --store-keys):
MASTER_KEY_VARIABLE, BACKUP_KEY_VARIABLE = "PAAS_MASTER_KEY", "PAAS_BACKUP_KEY"
KEY_VARIABLES = (MASTER_KEY_VARIABLE, BACKUP_KEY_VARIABLE)
PASSED_VARIABLES = ENGINE_VARIABLES + NETWORK_VARIABLES + KEY_VARIABLES
# Not passed: PAAS_PROJECT/PAAS_ENV (run-due takes every schedule of the profile, whatever the
# project), PAAS_NOW (a test clock would freeze the timer), AWS_ACCESS_KEY_ID/SECRET (read by
# `dest add` only; the keys are stored encrypted in the state), DOCKER_CONTEXT (only the docker
# CLI of `svc connect` reads it), SSH_AUTH_SOCK (an agent lives as long as a login: an ssh
# target that the timer reaches needs its --ssh-key file).
# Control characters, and invisible format characters (bidi overrides) that would make an
# entry read differently from what it runs.
_REFUSED_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


class SchedulerError(PaasError):
    pass


def refuse_control_characters(what: str, value: str, hint: str, secret: bool = False) -> None:
    """InvalidInput (exit 2) when `value` holds a control character; a secret is never shown."""
    bad = next((char for char in value if unicodedata.category(char) in _REFUSED_CATEGORIES), None)
    if bad is None:
        return
    shown = "" if secret else f" {value!r}"  # repr: the character escaped, never printed raw
    raise InvalidInput(f"{what}{shown} holds a control character (U+{ord(bad):04X}); paas writes it into the host's "
                       "scheduler entry, where a line break would start a line of its own.", hint=hint)


def _check_home(home: Path) -> None:
    refuse_control_characters("PAAS_HOME", str(home), "Set PAAS_HOME to a folder whose path has no control characters.")


def _check_argv(argv: list[str]) -> None:
    for part in argv:
        refuse_control_characters("The timer's command (the Python interpreter's path)", part,
                                  "Run paas from a Python interpreter whose path has no control characters.")


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


def entry_argv(home: Path, argv: list[str] | None = None) -> list[str]:
    """run-due's command line in the entry: it reads the env file `backup schedule` wrote."""
    return [*(argv or run_due_argv()), ENV_FILE_OPTION, str(env_file_path(home))]


def systemd_units(home: Path, profile_id: str, argv: list[str] | None = None) -> dict[str, str]:
    """{file name: content} of the service and timer units. InvalidInput for a control character."""
    _check_home(home)
    refuse_control_characters("The profile id", profile_id, "The state database's profile id is damaged.")
    full_argv = entry_argv(home, argv)
    _check_argv(full_argv)
    name = unit_name(profile_id)
    command = " ".join(_systemd_quote(part) for part in full_argv)
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
    """The shell command of the cron line. InvalidInput for a control character."""
    _check_home(home)
    full_argv = entry_argv(home, argv)
    _check_argv(full_argv)
    log = home / LOG_FOLDER / "run-due.log"
    command = (f"umask 077; mkdir -p {shlex.quote(str(log.parent))}; PAAS_HOME={shlex.quote(str(home))} exec "
               + " ".join(shlex.quote(part) for part in full_argv)
               + f" >>{shlex.quote(str(log))} 2>&1")
    return command.replace("%", "\\%")  # cron turns a bare % into a newline


def cron_file(home: Path, profile_id: str, user: str, argv: list[str] | None = None) -> str:
    refuse_control_characters("The user name", user, "Schedule backups as a user whose name has no control characters.")
    refuse_control_characters("The profile id", profile_id, "The state database's profile id is damaged.")
    command = cron_command(home, argv)
    return (f"# paas-svc scheduled backups for PAAS_HOME={home} (profile {profile_id}); managed by paas, removed with the last schedule\n"
            "SHELL=/bin/sh\n"
            f"* * * * * {user} {command}\n")


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


# -- the environment the timer's run gets ------------------------------------------------

def env_file_path(home: Path) -> Path:
    return home / ENV_FILE


def _key_file_holds(home: Path, name: str, value: str) -> bool:
    """Whether the home's own key file already holds the key the variable gives (then the
    timer, which reads that file, needs nothing)."""
    from paas_svc.secrets import backup_key, keyfile

    path = keyfile.key_path(home) if name == MASTER_KEY_VARIABLE else backup_key.key_path(home)
    try:
        return path.read_text().strip() == value
    except (OSError, UnicodeDecodeError):
        return False


_WHY_NEEDED = {MASTER_KEY_VARIABLE: "every scheduled backup would fail for want of the master key",
               BACKUP_KEY_VARIABLE: "backups sent to a destination would be encrypted with another backup key"}


def entry_environment(home: Path, environ: Mapping[str, str], store_keys: bool = False) -> dict[str, str]:
    """The variables of PASSED_VARIABLES that the scheduled run gets, from `environ` (the shell
    that runs `backup schedule`). A key given by variable is kept only with `store_keys`, or
    when the env file already keeps that key variable (consent given before), or not at all
    when the home's own key file holds the same key; otherwise InvalidInput names the fixes.
    InvalidInput too for a value with a control character (it would end the env file's line)."""
    try:
        kept = read_env_file(env_file_path(home))
    except (StateError, FileNotFoundError):
        kept = {}
    environment, refused = {}, []
    for name in PASSED_VARIABLES:
        value = environ.get(name, "")
        if name in KEY_VARIABLES:
            value = value.strip()  # as the key readers take it
        if not value:
            continue  # empty is unset for every reader of these
        refuse_control_characters(f"${name}", value, f"Unset {name} or give it a value without control characters.",
                                  secret=name in KEY_VARIABLES)
        if name in KEY_VARIABLES:
            if _key_file_holds(home, name, value):
                continue
            if not (store_keys or name in kept):
                refused.append(name)
                continue
        environment[name] = value
    if refused:
        names = " and ".join(f"${name}" for name in refused)
        raise InvalidInput(
            f"The host's timer runs `paas backup run-due` without this shell's environment, so it would not get "
            f"{names}: {'; '.join(_WHY_NEEDED[name] for name in refused)}.",
            hint=f"Pass --store-keys to keep {'it' if len(refused) == 1 else 'them'} for the timer in {env_file_path(home)} "
                 "(mode 0600, beside state.db: whoever can read the home then has the key too), or set PAAS_SCHEDULER=none "
                 "and run `paas backup run-due` every minute from a scheduler of your own that sets "
                 f"{'it' if len(refused) == 1 else 'them'}.")
    return environment


def render_env_file(environment: Mapping[str, str], profile_id: str) -> str:
    """NAME=value lines, one a variable of PASSED_VARIABLES; a value never holds a control
    character, so a line is always one variable."""
    lines = [f"# paas-svc: the environment of `paas backup run-due` when the host's timer runs it (profile {profile_id}).",
             "# Written by `paas backup schedule` from the environment it ran in; keep it 0600."]
    for name, value in environment.items():
        if name not in PASSED_VARIABLES:
            raise InvalidInput(f"paas does not pass ${name} to the host's timer.")
        refuse_control_characters(f"${name}", value, f"Unset {name} or give it a value without control characters.",
                                  secret=name in KEY_VARIABLES)
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file paas wrote. StateError when it is not a regular file of
    this user that only this user can read and write (another user could otherwise point the
    timer at their engine or read the keys), or holds a line paas did not write."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise  # the callers tell "none yet" from "unreadable"
    except OSError as error:
        raise StateError(f"Cannot read {path}: {error.strerror}.") from None
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise StateError(f"{path} must be a regular file of this user with mode 0600 (it is {stat.filemode(info.st_mode)}, "
                         f"owner uid {info.st_uid}).",
                         hint="Run `paas backup schedule SLUG --every ...` again to write it afresh, after removing that file.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StateError(f"Cannot read {path}: {getattr(error, 'strerror', None) or 'not UTF-8 text'}.",
                         hint="Run `paas backup schedule SLUG --every ...` again to write it afresh.") from None
    environment = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or name not in PASSED_VARIABLES:
            raise StateError(f"{path} line {number} is not a variable paas passes to the timer.",
                             hint="Run `paas backup schedule SLUG --every ...` again to write it afresh.")
        environment[name] = value
    return environment


def apply_env_file(path: Path) -> None:
    """Make this process's environment the one `backup schedule` kept for the timer: every
    variable of PASSED_VARIABLES as the file says, unset when it does not name it."""
    try:
        environment = read_env_file(path)
    except FileNotFoundError:
        raise StateError(f"The environment file of the scheduled backups {path} is missing.",
                         hint="Run `paas backup schedule SLUG --every ...` again to write it.") from None
    for name in PASSED_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(environment)


def _write_env_file(home: Path, profile_id: str, environment: Mapping[str, str]) -> bool:
    """Write it (0600, atomically) when its content changes; whether it changed."""
    from paas_svc.state.home import write_private_file

    content = render_env_file(environment, profile_id)
    path = env_file_path(home)
    try:
        if path.read_text(encoding="utf-8") == content:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    write_private_file(path, content.encode())
    return True


def prepare_entry(home: Path, profile_id: str, environ: Mapping[str, str], store_keys: bool = False) -> dict[str, str]:
    """Everything `install` would refuse, refused now (before a schedule is stored): the
    environment the timer gets (returned, for sync) and every part of the entry. With
    PAAS_SCHEDULER=none there is no entry: nothing to refuse, nothing kept."""
    kind = detect_kind()
    if kind == "none":
        return {}
    environment = entry_environment(home, environ, store_keys)
    render_env_file(environment, profile_id)
    if kind == "systemd":
        systemd_units(home, profile_id)
    elif kind == "cron":
        cron_file(home, profile_id, user_name())
    return environment


# -- install / remove ----------------------------------------------------------------------

def _write_public(path: Path, content: str) -> bool:
    """Write a unit or cron file (0644: systemd and cron read them as any user; cron ignores
    group/other-writable files) when its content changes; whether it changed."""
    from paas_svc.state.home import write_private_file

    try:
        if path.read_text() == content:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # PAAS_CRON_DIR / PAAS_SYSTEMD_DIR may name a new folder
        write_private_file(path, content.encode())  # atomic: cron never reads half a file
        os.chmod(path, 0o644)
    except OSError as error:
        raise SchedulerError(f"Cannot write the host's timer file {path}: {error.strerror or error}.",
                             hint="Run as a user who may write there, or set PAAS_CRON_DIR / PAAS_SCHEDULER=none "
                                  "and run `paas backup run-due` every minute yourself.") from None
    return True


def _crontab_block(home: Path, profile_id: str) -> str:
    begin, end = _marker(profile_id)
    return f"{begin}\n* * * * * {cron_command(home)}\n{end}\n"


def install(home: Path, profile_id: str) -> SchedulerEntry:
    """Install the entry, or bring it up to date (another home path, another interpreter, an
    entry of an older paas): `changed` in the note's wording only when a file was written."""
    entry, _ = _ensure(home, profile_id)
    return entry


def _ensure(home: Path, profile_id: str) -> tuple[SchedulerEntry, bool]:
    kind = detect_kind()
    if kind == "none":
        return SchedulerEntry("none", [], "PAAS_SCHEDULER=none: run `paas backup run-due` every minute yourself."), False
    if kind == "systemd":
        folder, call, scope = _systemd_dir()
        units = systemd_units(home, profile_id)
        folder.mkdir(parents=True, exist_ok=True)
        paths, changed = [], False
        for file_name, content in units.items():
            path = folder / file_name
            changed = _write_public(path, content) or changed
            paths.append(path)
        if call and changed:
            _systemctl(scope, "daemon-reload")
            _systemctl(scope, "enable", "--now", f"{unit_name(profile_id)}.timer")
        return SchedulerEntry("systemd", paths, f"systemd timer {unit_name(profile_id)}.timer runs `paas backup run-due` every minute"), changed
    folder = _cron_target()
    if folder is not None:
        path = folder / unit_name(profile_id)
        changed = _write_public(path, cron_file(home, profile_id, user_name()))
        return SchedulerEntry("cron-file", [path], f"cron entry {path} runs `paas backup run-due` every minute"), changed
    if shutil.which("crontab") is None:
        raise SchedulerError("Neither systemd nor cron runs here, so paas cannot install its timer.",
                             hint="Run `paas backup run-due` every minute from your own scheduler (PAAS_SCHEDULER=none silences this).")
    block = _crontab_block(home, profile_id)
    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    changed = block not in current
    if changed:
        subprocess.run(["crontab", "-"], input=_crontab_without(current, profile_id) + block, text=True, check=True)
    return SchedulerEntry("crontab", [], f"an entry in {user_name()}'s crontab runs `paas backup run-due` every minute"), changed


def remove(home: Path, profile_id: str) -> SchedulerEntry:
    kind = detect_kind()
    if kind == "none":
        return SchedulerEntry("none", [], "")
    env_file_path(home).unlink(missing_ok=True)
    if kind == "systemd":
        folder, call, scope = _systemd_dir()
        if call:
            subprocess.run(["systemctl", *scope, "disable", "--now", f"{unit_name(profile_id)}.timer"], capture_output=True)
        paths = [folder / f"{unit_name(profile_id)}.{suffix}" for suffix in ("service", "timer")]
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


def sync(home: Path, profile_id: str, schedule_count: int, environment: Mapping[str, str] | None = None) -> SchedulerEntry | None:
    """Install with the first schedule, remove with the last; None when nothing changed.
    With schedules, `environment` (from prepare_entry) is what the timer's run gets from now on
    (the env file is rewritten when it differs), and an entry that differs from what this paas
    writes (another home, interpreter or an older paas) is rewritten. Without `environment`
    the env file stays as it is (one is written, empty, when there is none)."""
    kind = detect_kind()
    if not schedule_count:
        if installed(home, profile_id) and kind != "none":
            return remove(home, profile_id)
        return None
    if kind == "none":
        return None
    present = installed(home, profile_id)
    env_changed = False
    if environment is not None or not env_file_path(home).exists():
        env_changed = _write_env_file(home, profile_id, environment or {})
    entry, changed = _ensure(home, profile_id)
    if not present:
        return entry
    if changed:
        return SchedulerEntry(entry.kind, entry.paths, f"updated: {entry.note}")
    if env_changed:
        return SchedulerEntry(entry.kind, entry.paths, f"updated the scheduled backups' environment in {env_file_path(home)}")
    return None
