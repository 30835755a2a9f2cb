"""`svc import` without an engine: the source URL parsed and shown without its password, the
checks that refuse a URL before anything runs, and what each kind hands the engine (the
password only in the exec's environment, never an argv). The MongoDB config script runs for
real in a local shell."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import quote

import pytest

from paas_svc.dsn import is_loopback
from paas_svc.engine.sdk import ExecResult
from paas_svc.errors import Conflict, InvalidInput
from paas_svc.kinds import mongodb, mysql, postgres, redis
from paas_svc.kinds.strategy import BackupFailed
from paas_svc.usecases.importing import check_source, parse_source_url
from tests.fakes import RecordingEngine, make_service

SECRET = "p@ss:w/rd?#%éZq-0123"  # characters a URL must encode


def url(scheme: str, host: str = "db.example.com", port: str = ":5432", path: str = "/shop", query: str = "") -> str:
    return f"{scheme}://legacy:{quote(SECRET, safe='')}@{host}{port}{path}{query}"


# -- parsing and showing -------------------------------------------------------------------

def test_the_url_is_parsed_and_shown_without_its_password():
    source = parse_source_url(url("postgres", query="?sslmode=require") + "\n")
    assert (source.scheme, source.host, source.port, source.user, source.database) == ("postgres", "db.example.com", 5432, "legacy", "shop")
    assert source.password == SECRET and source.query == {"sslmode": "require"}
    assert source.shown() == "postgres://legacy@db.example.com:5432/shop"
    assert SECRET not in repr(source) and quote(SECRET, safe="") not in repr(source)


def test_mask_hides_the_url_and_both_forms_of_the_password():
    source = parse_source_url(url("mysql", port=":3306"))
    text = f"tool said: {source.text} / {SECRET} / {quote(SECRET, safe='')}"
    masked = source.mask(text)
    assert SECRET not in masked and quote(SECRET, safe="") not in masked
    assert masked == "tool said: mysql://legacy@db.example.com:3306/shop / ******** / ********"


def test_a_password_query_parameter_is_a_password():
    source = parse_source_url(f"postgresql://legacy@db.example.com/shop?password={quote(SECRET, safe='')}&sslmode=verify-full")
    assert source.password == SECRET and source.query == {"sslmode": "verify-full"}


@pytest.mark.parametrize("text", ["", "   \n", "not a url", f"postgres://legacy:{SECRET}@db.example.com:notaport/shop",
                                  f"postgres:legacy:{SECRET}@db", f"postgres://legacy:{quote(SECRET)}@/shop",
                                  f"postgres://a:{quote(SECRET)}@h/db x", f"postgres://a:{quote(SECRET)}@h/db?a=1&a=2",
                                  "postgres://h/" + "x" * 5000])
def test_a_bad_url_is_refused_without_being_echoed(text):
    with pytest.raises(InvalidInput) as refused:
        parse_source_url(text)
    shown = refused.value.message + (refused.value.hint or "")
    assert SECRET not in shown and quote(SECRET) not in shown and quote(SECRET, safe="") not in shown


@pytest.mark.parametrize("host,loopback", [("localhost", True), ("LOCALHOST", True), ("127.0.0.1", True), ("127.1.2.3", True),
                                           ("::1", True), ("db.localhost", True), ("10.0.0.5", False),
                                           ("db.example.com", False), ("paas-test-src", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


# -- the checks before anything runs --------------------------------------------------------

@pytest.mark.parametrize("template,text", [
    ("postgres-16", url("postgresql")), ("redis-7", url("rediss", port=":6380", path="")),
    ("mongodb-7", url("mongodb+srv", port="", path="/shop", query="?authSource=admin")),
])
def test_a_url_of_the_service_kind_is_accepted(template, text):
    assert check_source(make_service(template), text).password == SECRET


@pytest.mark.parametrize("template,text,words", [
    ("postgres-16", url("redis"), "A redis:// URL cannot be imported into shop/production/svc1 (postgres-16); it takes postgres:// or postgresql://"),
    ("redis-7", url("postgres"), "it takes redis:// or rediss://"),
    ("postgres-16", url("postgres", host="127.0.0.1"), "loopback"),
    ("postgres-16", url("postgres", host="[::1]"), "loopback"),
    ("redis-7", url("redis", port=":6379", path="", query="?ssl_cert_reqs=none"), "parameters paas does not pass on: ssl_cert_reqs"),
    ("minio", url("s3"), "paas imports only into postgres, mysql, redis and mongodb services"),
])
def test_a_url_the_service_cannot_take_is_refused(template, text, words):
    with pytest.raises(InvalidInput) as refused:
        check_source(make_service(template), text)
    assert words in refused.value.message
    assert SECRET not in refused.value.message and quote(SECRET, safe="") not in refused.value.message


def test_a_template_with_its_own_backup_strategy_is_refused():
    service = make_service("postgres-16")
    service.spec["backup"] = {"strategy": "volume"}
    with pytest.raises(Conflict, match="its own strategy"):
        check_source(service, url("postgres"))


@pytest.mark.parametrize("text,words", [
    (url("mysql", port=":3306", path=""), "names no database"),
    (url("mysql", query="?charset=latin1"), "parameters paas does not pass on: charset"),
])
def test_mysql_needs_a_database_and_knows_its_parameters(text, words):
    with pytest.raises(InvalidInput, match=words):
        mysql.check_import_source(parse_source_url(text))


# -- what each kind hands the engine ---------------------------------------------------------

class Context:
    def __init__(self, template: str):
        self.service = make_service(template)
        self.container = self.service.container_name


def only_in_the_environment(engine: RecordingEngine) -> None:
    for call in engine.calls:
        if call[0] in ("exec", "exec_stream"):
            argv = " ".join(call[2])
            assert SECRET not in argv and quote(SECRET, safe="") not in argv, argv
    assert any(SECRET in value or quote(SECRET, safe="") in value
               for call in engine.calls if call[0] in ("exec", "exec_stream") for value in dict(call[3]).values())


def test_postgres_dumps_with_a_conninfo_and_pgpassword():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(0, b"PGDMP...", b""))
    sink = _Sink()
    source = parse_source_url(url("postgres", host="db.example.com", query="?sslmode=require&application_name=it's"))
    postgres.import_dump(engine, Context("postgres-16"), source, sink)
    (kind, container, argv, environment), = engine.calls
    assert kind == "exec_stream" and argv[:4] == ("pg_dump", "-Fc", "--no-acl", "--no-owner") and argv[4] == "--dbname"
    assert argv[5] == ("host='db.example.com' port='5432' user='legacy' dbname='shop' connect_timeout='10' "
                       "sslmode='require' application_name='it\\'s'")
    assert dict(environment) == {"PGPASSWORD": SECRET}
    assert sink.data == b"PGDMP..."


def test_a_failed_dump_says_why():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(1, b"", b'FATAL:  password authentication failed for user "legacy"'))
    with pytest.raises(BackupFailed, match="pg_dump could not read the source database .exit 1.: FATAL:  password authentication"):
        postgres.import_dump(engine, Context("postgres-16"), parse_source_url(url("postgres")), _Sink())


def test_mysql_dumps_with_everything_from_the_url_in_the_environment():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(0, b"-- MariaDB dump", b""))
    mysql.import_dump(engine, Context("postgres-16"), parse_source_url(url("mariadb", port="", query="?ssl=true")), _Sink())
    (kind, _container, argv, environment), = engine.calls
    assert argv == ("sh", "-c", mysql.IMPORT_DUMP_SCRIPT)
    assert dict(environment) == {"MYSQL_PWD": SECRET, "PAAS_SRC_HOST": "db.example.com", "PAAS_SRC_PORT": "3306",
                                 "PAAS_DB_USER": "legacy", "PAAS_DB_NAME": "shop", "PAAS_SRC_TLS": "--ssl"}
    only_in_the_environment(engine)


def test_redis_syncs_the_rdb_into_a_private_file_then_removes_it():
    archives = {}

    def reply(command):
        if "--rdb" in command:
            archives[command[-1]] = tar_of("paas-import.rdb", b"REDIS0010...")
            return ExecResult(0, b"Transfer finished with success.", b"")
        return ExecResult(0, b"", b"")

    engine = RecordingEngine(exec_reply=reply)
    engine.archives = archives  # filled by the sync
    sink = _Sink()
    redis.import_dump(engine, Context("redis-7"), parse_source_url(url("rediss", port=":6380", path="")), sink)
    sync, fetch, remove = engine.calls
    path = sync[2][-1]
    assert sync[2][:4] == ("sh", "-c", 'umask 077; exec "$@"', "paas-import")
    assert sync[2][4:] == ("redis-cli", "-h", "db.example.com", "-p", "6380", "--user", "legacy", "--tls", "--rdb", path)
    assert dict(sync[3]) == {"REDISCLI_AUTH": SECRET} and path.startswith("/tmp/paas-import-")
    assert fetch == ("get_archive", sync[1], path) and remove[2] == ("rm", "-f", path)
    assert sink.data == b"REDIS0010..."


def test_redis_removes_its_file_when_the_sync_fails():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(1, b"", b"AUTH failed: WRONGPASS") if "--rdb" in command
                             else ExecResult(0, b"", b""))
    with pytest.raises(BackupFailed, match="must allow SYNC"):
        redis.import_dump(engine, Context("redis-7"), parse_source_url(url("redis", port="", path="")), _Sink())
    assert engine.calls[-1][2][:2] == ("rm", "-f")


def test_mongodump_reads_the_whole_uri_from_its_config_file(tmp_path):
    """The real script in a real shell, with a stand-in mongodump that prints the file it is given."""
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(0, b"\x1f\x8b...", b""))
    source = parse_source_url(url("mongodb", port=":27017", query="?authSource=admin"))
    mongodb.import_dump(engine, Context("mongodb-7"), source, _Sink())
    (_kind, _container, argv, environment), = engine.calls
    only_in_the_environment(engine)
    tool = tmp_path / "mongodump"
    tool.write_text('#!/bin/sh\nwhile [ "$1" != --config ]; do shift; done\ncat "$2"; ls -l "$2" | cut -c1-10\necho "$2" > "$0.conf"\n')
    tool.chmod(0o755)
    local = [argv[0], argv[1], argv[2], argv[3], str(tool), *argv[5:]]
    result = subprocess.run(local, env={"PATH": os.environ["PATH"], **dict(environment)}, capture_output=True, text=True, check=True)
    config, mode = result.stdout.splitlines()
    assert config == mongodb.mongo_uri_config_text(source.text) and mode == "-rw-------"
    assert not os.path.exists((tmp_path / "mongodump.conf").read_text().strip())  # removed when the tool ended


class _Sink:
    def __init__(self):
        self.data = b""

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)


def tar_of(name: str, content: bytes) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


# -- the command -------------------------------------------------------------------------------

def test_a_url_on_the_command_line_is_refused_and_never_echoed(paas):
    given = url("postgres")
    result = paas("svc", "import", "db", given)
    assert result.exit_code == 2 and "read from stdin, not the command line" in result.stderr, result.output
    assert SECRET not in result.output and quote(SECRET, safe="") not in result.output
    unknown = paas("svc", "import", "db", "--url", given)
    assert unknown.exit_code == 2 and "No such option: --url" in unknown.stderr
    assert quote(SECRET, safe="") not in unknown.output


def test_the_url_comes_only_with_url_stdin(paas):
    result = paas("svc", "import", "db")
    assert result.exit_code == 2 and "--url-stdin" in result.stderr, result.output


def test_an_image_without_mongodump_is_named():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(127, b"", b"paas-mongo-tool: 1: mongodump: not found"))
    with pytest.raises(BackupFailed, match=r"The image of svc1 \(mongo:7\S*\) has no mongodump") as failed:
        mongodb.import_dump(engine, Context("mongodb-7"), parse_source_url(url("mongodb", port="")), _Sink())
    assert "MongoDB database tools" in failed.value.hint


def test_a_url_given_in_place_of_the_slug_is_refused_and_never_echoed(paas):
    result = paas("svc", "import", url("postgres"), "--url-stdin")
    assert result.exit_code == 2 and "read from stdin, not the command line" in result.stderr, result.output
    assert quote(SECRET, safe="") not in result.output
