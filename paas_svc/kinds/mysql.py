"""The mysql kind: MariaDB and MySQL. A real MySQL-protocol login (mysql_native_password or
caching_sha2_password) as the app user into its database as the readiness probe; user,
password and db as its credentials. The backup is `mariadb-dump --single-transaction` of the
app database (a consistent InnoDB snapshot without locking writers), restored by piping the
dump into `mariadb`; the password reaches both through MYSQL_PWD in the exec's environment,
never the command line. The dump holds the app database only, not the `mysql` schema, so a
clone or restore keeps the target's own users and passwords."""

from __future__ import annotations

from paas_svc.kinds.generic import CommandStrategy
from paas_svc.kinds.protocols import connect
from paas_svc.kinds.protocols import mysql as wire
from paas_svc.kinds.strategy import BackupFailed

NAME = "mysql"
CREDENTIALS: tuple[str, ...] = ("user", "password", "db")
# `svc restore` fills a new volume and swaps it in; the old volume is the safety copy (usecases/data.py).
RESTORE_INTO_NEW_VOLUME = True


def probe(host: str, port: int, credentials: dict[str, str]) -> str:
    with connect(host, port) as sock:
        handshake = wire.login(sock, credentials.get("user", "root"), credentials.get("password", ""), credentials.get("db", ""))
        wire.quit(sock)
    return f"logged in to {handshake.server_version.split('-')[0]} over TCP"


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
