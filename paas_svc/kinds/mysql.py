"""The mysql kind: MariaDB and MySQL. A real MySQL-protocol login (mysql_native_password or
caching_sha2_password) as the app user into its database as the readiness probe; user,
password and db as its credentials. The backup is `mariadb-dump --single-transaction` of the
app database (a consistent InnoDB snapshot without locking writers), restored by piping the
dump into `mariadb`; the password reaches both through MYSQL_PWD in the exec's environment,
never the command line. The dump holds the app database only, not the `mysql` schema, so a
clone or restore keeps the target's own users and passwords."""

from __future__ import annotations

from paas_svc.errors import InvalidInput
from paas_svc.kinds.generic import CommandStrategy
from paas_svc.kinds.protocols import connect
from paas_svc.kinds.protocols import mysql as wire
from paas_svc.kinds.strategy import BackupFailed

NAME = "mysql"
CREDENTIALS: tuple[str, ...] = ("user", "password", "db")
# `svc restore` fills a new volume and swaps it in; the old volume is the safety copy (usecases/data.py).
RESTORE_INTO_NEW_VOLUME = True


# -- TLS (see paas_svc/usecases/tls.py) ------------------------------------------------------
SERVER_COMMAND = ["mariadbd"]  # the image's own CMD (mariadb:11), which the TLS arguments follow
TLS_FILE_OWNER = "mysql"  # the server runs as mysql and reads the key as that user
TLS_DIR = "/paas-tls"


def tls_server(mode: str) -> tuple[list[str], dict[str, str]]:
    """The certificate files; `required` adds require_secure_transport (TCP only over TLS;
    the local socket the backups use stays open)."""
    arguments = [f"--ssl-cert={TLS_DIR}/server.crt", f"--ssl-key={TLS_DIR}/server.key", f"--ssl-ca={TLS_DIR}/ca.crt"]
    if mode == "required":
        arguments.append("--require-secure-transport=ON")
    return arguments, {}


def tls_url(url: str, mode: str, ca_path: str) -> str:
    """`ssl_ca` (PyMySQL and SQLAlchemy's mysql dialects: verify the certificate and host name)."""
    return f"{url}{'&' if '?' in url else '?'}ssl_ca={ca_path}"


def tls_reload(engine, container: str, credentials: dict[str, str]) -> bool:
    """FLUSH SSL (MariaDB >= 10.4) re-reads the certificate files; the root password through MYSQL_PWD."""
    if not credentials.get("root_password"):
        return False
    result = engine.exec_capture(container, ["sh", "-c", 'exec "$(command -v mariadb || echo mysql)" -uroot -e "FLUSH SSL"'],
                                 environment={"MYSQL_PWD": credentials["root_password"]})
    return result.exit_code == 0


def probe(host: str, port: int, credentials: dict[str, str], ssl_context=None) -> str:
    with connect(host, port) as sock:
        handshake = wire.login(sock, credentials.get("user", "root"), credentials.get("password", ""), credentials.get("db", ""),
                               ssl_context, host)
        if ssl_context is None:
            wire.quit(sock)
    return f"logged in to {handshake.server_version.split('-')[0]} over {'TLS (certificate verified)' if ssl_context else 'TCP'}"


def sanity_check(engine, ctx) -> str:
    """After a restore (`backup verify`): the number of tables in the app database (password via MYSQL_PWD)."""
    creds = ctx.credentials
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
    result = engine.exec_capture(
        ctx.container, ["sh", "-c", 'exec "$(command -v mariadb || echo mysql)" -N -B -u"$PAAS_DB_USER" "$PAAS_DB_NAME" -e "$PAAS_SQL"'],
        environment={"MYSQL_PWD": creds["password"], "PAAS_DB_USER": creds["user"], "PAAS_DB_NAME": creds["db"], "PAAS_SQL": sql})
    text = result.stdout.decode("utf-8", errors="replace").strip()
    if result.exit_code != 0 or not text.isdigit():
        raise BackupFailed(f"mariadb could not count the tables: {result.error_text() if result.exit_code else text}")
    return f"{text} tables"


class MysqlStrategy(CommandStrategy):
    def __init__(self):
        # `sh -c` only to pick the tool name the image has (MySQL images lack mariadb-*);
        # the user, database and password come from the environment.
        super().__init__(
            NAME,
            dump=["sh", "-c", 'exec "$(command -v mariadb-dump || echo mysqldump)" --single-transaction --routines --triggers '
                              '--events --no-tablespaces -u"$PAAS_DB_USER" "$PAAS_DB_NAME"'],
            restore=["sh", "-c", 'exec "$(command -v mariadb || echo mysql)" -u"$PAAS_DB_USER" "$PAAS_DB_NAME"'],
            environment={"MYSQL_PWD": "{password}", "PAAS_DB_USER": "{user}", "PAAS_DB_NAME": "{db}"},
            extension="sql",
        )

    def tool_version(self, engine, ctx):
        result = engine.exec_capture(ctx.container, ["sh", "-c", '"$(command -v mariadb-dump || echo mysqldump)" --version'])
        text = (result.stdout or result.stderr).decode("utf-8", errors="replace").strip().splitlines()
        return text[0][:200] if result.exit_code == 0 and text else "mariadb-dump"


BACKUP = MysqlStrategy()


# -- import: a dump of a database paas does not manage --------------------------------------

IMPORT_SCHEMES: tuple[str, ...] = ("mysql", "mariadb")
IMPORT_DEFAULT_PORT = 3306
# The dump options of a backup (MysqlStrategy), plus the source's host and port; `--ssl` when the
# URL asks for TLS. Everything from the URL comes in through the environment.
IMPORT_DUMP_SCRIPT = (
    'exec "$(command -v mariadb-dump || echo mysqldump)" --single-transaction --routines --triggers --events '
    '--no-tablespaces $PAAS_SRC_TLS '
    '-h"$PAAS_SRC_HOST" -P"$PAAS_SRC_PORT" -u"$PAAS_DB_USER" "$PAAS_DB_NAME"'
)
IMPORT_TLS_PARAMETERS = ("ssl", "ssl-mode", "sslmode", "tls")


def check_import_source(source) -> None:
    """Refuse (before anything runs) a source URL this kind cannot dump."""
    if not source.database:
        raise InvalidInput("The source URL names no database: mysql://USER:PASSWORD@HOST:PORT/DATABASE.")
    unknown = sorted(set(source.query) - set(IMPORT_TLS_PARAMETERS))
    if unknown:
        raise InvalidInput(f"The source URL has parameters paas does not pass on: {', '.join(unknown)} "
                           f"(it knows {', '.join(IMPORT_TLS_PARAMETERS)}, which ask for TLS).")


def import_dump(engine, ctx, source, sink) -> None:
    """`svc import`: mariadb-dump (or mysqldump) of the foreign database `source` (a parsed URL:
    host, port, user, password, database, query) run in the service's own container, written to
    `sink`: the SQL payload of a paas backup of this kind, restored by BACKUP.restore. The
    password reaches the tool through MYSQL_PWD, never its command line."""
    check_import_source(source)
    tls = any(source.query.get(name, "").lower() not in ("", "0", "false", "disabled", "disable", "preferred")
              for name in IMPORT_TLS_PARAMETERS)
    environment = {"MYSQL_PWD": source.password or "", "PAAS_SRC_HOST": source.host,
                   "PAAS_SRC_PORT": str(source.port or IMPORT_DEFAULT_PORT), "PAAS_DB_USER": source.user or "root",
                   "PAAS_DB_NAME": source.database, "PAAS_SRC_TLS": "--ssl" if tls else ""}
    result = engine.exec_stream(ctx.container, ["sh", "-c", IMPORT_DUMP_SCRIPT], sink, environment=environment)
    if result.exit_code != 0:
        raise BackupFailed(f"mariadb-dump could not read the source database (exit {result.exit_code}): {result.error_text()}")
