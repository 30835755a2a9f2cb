"""What paas runs inside a service's own container, per kind of engine: its client for
`svc connect`, and how a password is changed in the running engine for `svc rotate-password`.

Secrets reach those processes only through their exec environment (PGPASSWORD, REDISCLI_AUTH,
MYSQL_PWD, ...), never their argv: argv shows in `ps` inside the container and in
`docker inspect` of the exec. Statements that must carry a new password are built by the
shell builtin `printf` from environment variables and piped to the client, so no process's
argv ever holds it. Generated passwords are letters and digits, so quoting is trivial.

Pure data and functions (no engine, no I/O): one entry per kind, meant to move into the
per-kind modules of the catalog as they appear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from paas_svc.errors import InvalidInput

# Environment names paas sets on an exec; the scripts below read only these.
OLD = "PAAS_PASSWORD"
NEW = "PAAS_NEW_PASSWORD"
USER = "PAAS_USER"
DB = "PAAS_DB"
NEW_ROOT = "PAAS_NEW_ROOT_PASSWORD"

# MariaDB / MySQL: one `SET PASSWORD` (MariaDB; it keeps an account's other plugins, e.g. the
# official image's `OR unix_socket` on root@localhost) or `ALTER USER` (MySQL) per account, for
# every host an account name has. Run as root over the socket: root may change every account,
# and the session stays logged in while root's own password changes under it.
_MYSQL_ROTATE_AS_ROOT = (
    'cli="$(command -v mariadb || command -v mysql)"; tab="$(printf "\\t")"; '
    'if command -v mariadb >/dev/null; then fmt="SET PASSWORD FOR \'%s\'@\'%s\' = PASSWORD(\'%s\');\\n"; '
    'else fmt="ALTER USER \'%s\'@\'%s\' IDENTIFIED BY \'%s\';\\n"; fi; '
    f'accounts="$(printf "SELECT user, host FROM mysql.user WHERE user IN (\'%s\', \'root\');\\n" "${USER}" '
    '| "$cli" -u root -N -B)" || exit 1; '
    # Both names must have an account, or one password would change and not the other.
    f'for name in "${USER}" root; do printf "%s\\n" "$accounts" | grep -q "^$name$tab" '
    '|| { echo "no account named $name" >&2; exit 1; }; done; '
    'printf "%s\\n" "$accounts" | while IFS="$tab" read -r name host; do '
    f'if [ "$name" = root ]; then pw="${NEW_ROOT}"; else pw="${NEW}"; fi; '
    'printf "$fmt" "$name" "$host" "$pw"; done | "$cli" -u root'
)
# Without a root password (a user template that has none): the app user changes its own,
# which needs no privilege.
_MYSQL_ROTATE_OWN = (
    'cli="$(command -v mariadb || command -v mysql)"; '
    'if command -v mariadb >/dev/null; then fmt="SET PASSWORD = PASSWORD(\'%s\');\\n"; '
    'else fmt="ALTER USER USER() IDENTIFIED BY \'%s\';\\n"; fi; '
    f'printf "$fmt" "${NEW}" | "$cli" -h 127.0.0.1 -P "$0" -u "${USER}"'
)


@dataclass(frozen=True)
class ExecCommand:
    argv: list[str]  # never holds a secret
    environment: dict[str, str] = field(default_factory=dict)  # secrets go here


# A TLS service (paas_svc/usecases/tls.py) has its CA at this path in its container; its
# clients there connect over TLS to 127.0.0.1 (named in its certificate), verifying it.
CONTAINER_CA = "/paas-tls/ca.crt"
PG_TLS = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": CONTAINER_CA}
REDIS_TLS = f" --tls --cacert {CONTAINER_CA} -h 127.0.0.1"
MYSQL_TLS = f" --ssl-ca={CONTAINER_CA}"


def client_command(kind: str, credentials: Mapping[str, str], port: int, tls: bool = False) -> ExecCommand:
    """The engine's own interactive client, already authenticated, for `svc connect` (over TLS
    for a TLS service)."""
    user, password, db = credentials.get("user", ""), credentials.get("password", ""), credentials.get("db", "")
    if kind == "postgres":
        # Over TCP, so the password is what authenticates (the socket may trust local users).
        return ExecCommand(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db],
                           {"PGPASSWORD": password, **(PG_TLS if tls else {})})
    if kind == "redis":
        # REDISCLI_AUTH: redis-cli (and valkey-cli) send AUTH with it; no warning about -a.
        return ExecCommand(["sh", "-c", f'exec "$(command -v redis-cli || command -v valkey-cli)"{REDIS_TLS if tls else ""} -p "$0"',
                            str(port)], {"REDISCLI_AUTH": password, "VALKEYCLI_AUTH": password})
    if kind == "mysql":
        return ExecCommand(["sh", "-c", f'exec "$(command -v mariadb || command -v mysql)"{MYSQL_TLS if tls else ""} '
                            '-h 127.0.0.1 -P "$0" -u "$1" "$2"', str(port), user, db], {"MYSQL_PWD": password})
    if kind == "mongodb":
        # mongosh has no password variable: the connection string is built in its own JS from the environment.
        script = (f"db = connect('mongodb://' + process.env.{USER} + ':' + process.env.{OLD} "
                  f"+ '@127.0.0.1:{port}/admin?authSource=admin')")
        return ExecCommand(["mongosh", "--nodb", "--quiet", "--shell", "--eval", script], {USER: user, OLD: password})
    raise InvalidInput(f"A {kind} service has no client shell to open.",
                       hint="Connect with your own client: `paas svc env SLUG` prints the variables it needs.")


@dataclass(frozen=True)
class Rotation:
    field: str  # the credential that changes
    command: ExecCommand | None  # changes it in the running engine (None: the engine reads it only at start)
    recreate: bool  # the container's command or environment carries it, read at start: re-create it
    also: tuple[str, ...] = ()  # further credentials renewed with it (MariaDB: root_password)


def rotation(kind: str, credentials: Mapping[str, str], new_secret: str, port: int,
             new_credentials: Mapping[str, str] | None = None, tls: bool = False) -> Rotation:
    """How to give a running service a new password (or master key). `new_credentials` holds
    the new values of the `also` credentials; `tls`: the service speaks TLS."""
    user, password, db = credentials.get("user", ""), credentials.get("password", ""), credentials.get("db", "")
    if kind == "postgres":
        script = (f'printf "ALTER ROLE \\"%s\\" PASSWORD \'%s\';\\n" "${USER}" "${NEW}" '
                  f'| psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$0" -U "${USER}" -d "${DB}"')
        return Rotation("password", ExecCommand(["sh", "-c", script, str(port)],
                                                {"PGPASSWORD": password, USER: user, DB: db, NEW: new_secret,
                                                 **(PG_TLS if tls else {})}), False)
    if kind == "redis":
        # CONFIG SET requirepass changes the default user's password at once (open connections stay
        # authenticated); the container's start config holds requirepass, so it is re-created to persist it.
        script = ('cli="$(command -v redis-cli || command -v valkey-cli)"; '
                  f'printf "CONFIG SET requirepass %s\\n" "${NEW}" | "$cli"{REDIS_TLS if tls else ""} -p "$0"')
        return Rotation("password", ExecCommand(["sh", "-c", script, str(port)],
                                                {"REDISCLI_AUTH": password, "VALKEYCLI_AUTH": password, NEW: new_secret}), True)
    if kind == "mysql":
        root_password = credentials.get("root_password", "")
        if root_password:  # the template made a root account: renew both, as root
            new_root = (new_credentials or {}).get("root_password", "")
            return Rotation("password", ExecCommand(["sh", "-c", _MYSQL_ROTATE_AS_ROOT],
                                                    {"MYSQL_PWD": root_password, USER: user, NEW: new_secret,
                                                     NEW_ROOT: new_root}), False, ("root_password",))
        own = _MYSQL_ROTATE_OWN.replace('"$cli" -h', f'"$cli"{MYSQL_TLS} -h') if tls else _MYSQL_ROTATE_OWN
        return Rotation("password", ExecCommand(["sh", "-c", own, str(port)],
                                                {"MYSQL_PWD": password, USER: user, NEW: new_secret}), False)
    if kind == "mongodb":
        script = (f"db = connect('mongodb://' + process.env.{USER} + ':' + process.env.{OLD} "
                  f"+ '@127.0.0.1:{port}/admin?authSource=admin'); "
                  f"db.changeUserPassword(process.env.{USER}, process.env.{NEW})")
        return Rotation("password", ExecCommand(["mongosh", "--nodb", "--quiet", "--eval", script],
                                                {USER: user, OLD: password, NEW: new_secret}), False)
    if kind == "meilisearch":
        return Rotation("key", None, True)  # MEILI_MASTER_KEY is read at start
    if kind == "s3":
        return Rotation("password", None, True)  # MINIO_ROOT_PASSWORD is read at start
    raise InvalidInput(f"A {kind} service has no password to rotate.")
