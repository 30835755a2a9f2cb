"""Backup files (header, validation) and the per-engine strategies' contract, without Docker.

The contract tests run each strategy against a recording fake of the engine adapter whose
methods have the real adapter's signatures (checked below), and assert on the exact
commands, archive paths and stop/start sequences. They do NOT prove that mongodump,
Meilisearch or MinIO behave as assumed: only PostgreSQL and Redis get real round trips
(tests/engine/test_backup.py).
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from paas_svc.engine.sdk import Engine, ExecResult
from paas_svc.kinds import check_compatible, kind_of, strategy_for
from paas_svc.kinds import mongodb as mongodb_kind
from paas_svc.kinds import strategy as bk
from paas_svc.kinds.postgres import major_from_image as postgres_major_from_image
from paas_svc.kinds.postgres import major_from_version_output as postgres_major_from_version_output
from paas_svc.kinds.strategy import (
    BackupFailed,
    InvalidBackup,
    ServiceContext,
    check_volume_tar,
    encode_header,
    parse_header,
    read_backup,
    verify_payload,
)
from paas_svc.state.models import READY, ServiceRecord
from tests.fakes import PASSWORD, RecordingEngine, credentials_for, make_service, parameters
from tests.support.backup_files import HOSTILE_ARCHIVES, ROOT_DIR, crafted_tar, header_for, tar_entry, write_backup

# -- helpers ----------------------------------------------------------------------------------

def tar_bytes(files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def tar_contents(data: bytes) -> dict[str, bytes | None]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        return {m.name: (archive.extractfile(m).read() if m.isfile() else None) for m in archive.getmembers()}


def fake_context(engine: RecordingEngine, service: ServiceRecord, http=None) -> ServiceContext:
    from paas_svc.engine.sdk import ContainerSpec

    def spec(extra_environment=None):
        return ContainerSpec(name=service.container_name, image=service.image, command=None,
                             environment=dict(extra_environment or {}), labels={}, volume=service.volume_name,
                             volume_path=service.spec["volume"], port_bindings={})

    return ServiceContext(service=service, credentials=credentials_for(service.template), labels={"paas.managed": "true"},
                          wait_ready=lambda: engine.calls.append(("wait_ready",)), container_spec=spec, http=http,
                          sleep=lambda seconds: None)


def names(calls) -> list[str]:
    return [call[0] for call in calls]


# -- the fake is built to the real signatures ------------------------------------------------

@pytest.mark.parametrize("method", ["stop", "start", "remove_container", "remove_volume", "ensure_volume",
                                    "create_container", "inspect_container",
                                    "exec_capture", "exec_stream", "get_archive", "put_archive", "run_once"])
def test_fake_matches_engine_adapter(method):
    assert parameters(getattr(RecordingEngine, method)) == parameters(getattr(Engine, method))


def test_fake_covers_every_adapter_method_the_strategies_call():
    """The fake has no method the real adapter lacks (each is signature-checked above)."""
    fake_methods = {name for name, value in vars(RecordingEngine).items() if callable(value) and not name.startswith("_")}
    assert fake_methods <= {name for name in vars(Engine) if not name.startswith("_")}


# -- the header ---------------------------------------------------------------------------------

def test_header_round_trip_and_padding():
    header = header_for()
    line = encode_header(header)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_header(line) == header
    padded = encode_header(header, pad_to=4096)
    assert len(padded) == 4096 and padded.endswith(b" \n")
    assert parse_header(padded) == header
    document = json.loads(line)
    assert document["paas_backup"] == 1
    assert list(document) == ["paas_backup", "template", "image", "created_at", "tool_version", "project", "env", "slug",
                              "payload_bytes", "payload_sha256"]
    with pytest.raises(ValueError):
        encode_header(header, pad_to=50)


@pytest.mark.parametrize("line, fragment", [
    (b"PGDMP\x01\x0e\x00", "not a paas backup"),
    (b'{"hello": 1}', "no 'paas_backup' marker"),
    (b"[1, 2]", "no 'paas_backup' marker"),
    (b'{"paas_backup": 2}', "written by a newer paas"),
    (b'{"paas_backup": "x"}', "unknown backup format"),
    (b'{"paas_backup": 1, "template": "redis-7"}', "incomplete backup header"),
])
def test_parse_header_refuses(line, fragment):
    with pytest.raises(InvalidBackup) as caught:
        parse_header(line, "f.bak")
    assert fragment in caught.value.message


def test_parse_header_refuses_bad_size_and_checksum():
    base = header_for().to_dict()
    for field, value in (("payload_bytes", -1), ("payload_bytes", "12"), ("payload_bytes", True), ("payload_sha256", "xyz"),
                         ("template", 7)):
        with pytest.raises(InvalidBackup):
            parse_header(json.dumps({**base, field: value}).encode())


# -- reading and validating a file ---------------------------------------------------------------

def test_read_backup_accepts_padded_and_compact_headers(tmp_path):
    payload = b"REDIS0011" + bytes(range(256)) * 10
    for pad in (True, False):
        path = write_backup(tmp_path / f"ok-{pad}.rdb", "redis-7", payload, pad)
        backup = read_backup(path)
        assert backup.header.payload_bytes == len(payload)
        with backup.open_payload() as handle:
            assert handle.read() == payload
        verify_payload(backup)


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(InvalidBackup, match="is empty"):
        read_backup(tmp_path / "empty")


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(InvalidBackup, match="No backup file"):
        read_backup(tmp_path / "nope")
    with pytest.raises(InvalidBackup, match="directory|regular file"):
        read_backup(tmp_path)


@pytest.mark.parametrize("keep", [1, 100, 4096, 4096 + 10, -1])
def test_truncated_file_is_refused(tmp_path, keep):
    payload = b"REDIS0011" + b"x" * 5000
    data = write_backup(tmp_path / "full", "redis-7", payload).read_bytes()
    (tmp_path / "cut").write_bytes(data[:keep])
    with pytest.raises(InvalidBackup, match="truncated|not a paas backup"):
        read_backup(tmp_path / "cut")


def test_a_file_cut_inside_its_header_is_called_truncated(tmp_path):
    data = write_backup(tmp_path / "full", "redis-7", b"REDIS0011").read_bytes()
    for keep in (30, 200, 4000):
        (tmp_path / "cut").write_bytes(data[:keep])
        with pytest.raises(InvalidBackup, match="truncated: it ends inside its header"):
            read_backup(tmp_path / "cut")


def test_trailing_bytes_are_refused(tmp_path):
    path = write_backup(tmp_path / "f", "redis-7", b"REDIS0011")
    path.write_bytes(path.read_bytes() + b"more")
    with pytest.raises(InvalidBackup, match="unexpected bytes"):
        read_backup(path)


def test_corrupted_payload_is_refused_by_checksum(tmp_path):
    path = write_backup(tmp_path / "f", "redis-7", b"REDIS0011" + b"a" * 100)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    backup = read_backup(path)
    with pytest.raises(InvalidBackup, match="does not match the checksum"):
        verify_payload(backup)


def test_kind_of_and_wrong_kind_refused():
    assert kind_of("postgres-16") == "postgres" and kind_of("redis-7") == "redis" and kind_of("minio") == "s3"
    assert kind_of("meilisearch-1.10") == "meilisearch" and kind_of("mongodb-7") == "mongodb"
    check_compatible(header_for("redis-7"), make_service("redis-7"), "f")  # same family: fine
    check_compatible(header_for("postgres-15"), make_service("postgres-16"), "f")  # pg_dump archives cross majors
    with pytest.raises(InvalidBackup) as caught:
        check_compatible(header_for("postgres-16"), make_service("redis-7", slug="cache"), "db.pgdump")
    assert "db.pgdump is a postgres-16 backup" in caught.value.message and "cache is a redis-7 service" in caught.value.message
    assert caught.value.exit_code == 2


def test_payload_magic_is_checked(tmp_path):
    wrong = write_backup(tmp_path / "x", "postgres-16", b"REDIS0011")
    with pytest.raises(InvalidBackup, match="not a pg_dump"):
        strategy_for("postgres-16").check_payload(read_backup(wrong), "/var/lib/postgresql/data")
    with pytest.raises(InvalidBackup, match="not a Redis RDB"):
        strategy_for("redis-7").check_payload(read_backup(write_backup(tmp_path / "y", "redis-7", b"PGDMP")), "/data")
    strategy_for("mongodb-7").check_payload(read_backup(write_backup(tmp_path / "z", "mongodb-7", b"\x1f\x8b\x08rest")), "/data/db")


def test_header_never_holds_credentials(tmp_path):
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(0, b"REDIS0011data", b""))
    service = make_service("postgres-16")
    ctx = fake_context(engine, service)
    line = encode_header(header_for("postgres-16", tool_version=strategy_for("postgres-16").tool_version(engine, ctx)))
    assert PASSWORD.encode() not in line


# -- pure helpers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("image, major", [
    ("postgres:16-alpine", 16), ("postgres:17", 17), ("postgres:16.4-bookworm", 16), ("registry:5000/postgres:15.2", 15),
    ("paas-test/postgres:17-abc", 17), ("postgres", None), ("postgres:latest", None), ("postgres:alpine", None),
    ("postgres:16@sha256:" + "a" * 64, 16), ("localhost:5000/pg", None),
])
def test_postgres_major_from_image(image, major):
    assert postgres_major_from_image(image) == major


def test_postgres_major_from_version_output():
    assert postgres_major_from_version_output("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n") == 15
    assert postgres_major_from_version_output("postgres (PostgreSQL) 17.2\n") == 17
    assert postgres_major_from_version_output("sh: postgres: not found") is None


def test_check_volume_tar():
    assert check_volume_tar(io.BytesIO(tar_bytes({"data/a": b"1", "data/sub/b": b"2"}, dirs=("data",))), "data") == 3
    for bad in ({"etc/passwd": b"x"}, {"data/../etc/passwd": b"x"}, {"/data/a": b"x"}):
        with pytest.raises(InvalidBackup):
            check_volume_tar(io.BytesIO(tar_bytes(bad)), "data")
    device = io.BytesIO()
    with tarfile.open(fileobj=device, mode="w") as archive:
        info = tarfile.TarInfo("data/null")
        info.type = tarfile.CHRTYPE
        archive.addfile(info)
    with pytest.raises(InvalidBackup, match="device"):
        check_volume_tar(io.BytesIO(device.getvalue()), "data")
    with pytest.raises(InvalidBackup, match="not a readable tar"):
        check_volume_tar(io.BytesIO(b"definitely not a tar archive" * 40), "data")
    with pytest.raises(InvalidBackup, match="empty"):
        check_volume_tar(io.BytesIO(tar_bytes({})), "data")


def test_default_backup_name_and_unique_path(tmp_path):
    from paas_svc.usecases.data import default_backup_name, human_size, unique_path

    service = make_service("postgres-16", slug="db")
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert default_backup_name(service, "pgdump", when=when) == "shop-production-db-20250304T050607Z.pgdump"
    assert default_backup_name(service, "pgdump", "pre-restore", when) == "shop-production-db-20250304T050607Z-pre-restore.pgdump"
    first = tmp_path / "a-b.meilidump.tar"
    assert unique_path(first) == first
    first.write_bytes(b"")
    assert unique_path(first) == tmp_path / "a-b-2.meilidump.tar"
    assert human_size(10) == "10 B" and human_size(2048) == "2.0 KiB" and human_size(3 * 1024 ** 2) == "3.0 MiB"


# -- contract: PostgreSQL ---------------------------------------------------------------------------

def test_postgres_backup_contract():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(0, b"PGDMP-payload", b""))
    service = make_service("postgres-16")
    sink = io.BytesIO()
    strategy_for(service.template).backup(engine, fake_context(engine, service), sink)
    assert engine.calls == [("exec_stream", service.container_name,
                             ("pg_dump", "-Fc", "--no-acl", "--no-owner", "-U", "app", "db"), ())]
    assert sink.getvalue() == b"PGDMP-payload"


def test_postgres_backup_failure_is_reported():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(1, b"", b"pg_dump: error: connection failed"))
    service = make_service("postgres-16")
    with pytest.raises(BackupFailed, match="pg_dump failed.*connection failed"):
        strategy_for(service.template).backup(engine, fake_context(engine, service), io.BytesIO())


@pytest.mark.parametrize("exit_code", [0, 1])
def test_postgres_restore_contract(tmp_path, exit_code):
    payload = b"PGDMP" + b"z" * 3000
    backup = read_backup(write_backup(tmp_path / "db.pgdump", "postgres-16", payload))
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(exit_code if command[0] == "pg_restore" else 0, b"", b"boom"))
    service = make_service("postgres-16")
    strategy = strategy_for(service.template)
    if exit_code:
        with pytest.raises(BackupFailed, match="pg_restore failed.*unchanged"):
            strategy.restore(engine, fake_context(engine, service), backup)
    else:
        strategy.restore(engine, fake_context(engine, service), backup)
    (_, put_path, put_data), = engine.put
    assert put_path == "/tmp"
    (name, content), = tar_contents(put_data).items()
    assert content == payload and name.startswith("paas-restore-")
    assert engine.calls == [
        ("put_archive", service.container_name, "/tmp"),
        ("exec", service.container_name, ("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                                          "-U", "app", "-d", "db", f"/tmp/{name}"), ()),
        ("exec", service.container_name, ("rm", "-f", f"/tmp/{name}"), ()),  # removed even when pg_restore fails
    ]
    assert "stop" not in names(engine.calls), "PostgreSQL is restored online"


# -- contract: Redis --------------------------------------------------------------------------------

class RedisScript:
    """Answers redis-cli like a server whose BGSAVE finishes after two polls. Without
    `counter`, INFO has no rdb_saves (as before Redis 7.0)."""

    def __init__(self, bgsave_reply=b"Background saving started", status=b"ok", counter=True):
        self.infos = 0
        self.bgsave_reply = bgsave_reply
        self.status = status
        self.counter = counter

    def __call__(self, command):
        if command[0] == "redis-server":
            return ExecResult(0, b"Redis server v=7.0.15 sha=0 malloc=jemalloc bits=64\n", b"")
        verb = command[1]
        if verb == "TIME":
            return ExecResult(0, b"1700000001\n123\n", b"")
        if verb == "BGSAVE":
            return ExecResult(0, self.bgsave_reply + b"\n", b"")
        if verb == "INFO":
            self.infos += 1
            done = self.infos > 3  # the first INFO is before BGSAVE, then two polls see it running
            running = 1 < self.infos <= 3
            lines = [b"# Persistence", b"rdb_bgsave_in_progress:%d" % running,
                     b"rdb_last_save_time:%s" % (b"1700000002" if done else b"1700000000"),
                     b"rdb_last_bgsave_status:%s" % (self.status if done else b"ok")]
            if self.counter:
                lines.append(b"rdb_saves:%d" % (6 if done else 5))
            return ExecResult(0, b"\r\n".join(lines) + b"\r\n", b"")
        raise AssertionError(command)


@pytest.mark.parametrize("counter", [True, False], ids=["rdb_saves", "lastsave-only"])
def test_redis_backup_contract(counter):
    rdb = b"REDIS0011" + b"r" * 500
    engine = RecordingEngine(exec_reply=RedisScript(counter=counter), archives={"/data/dump.rdb": tar_bytes({"dump.rdb": rdb})})
    service = make_service("redis-7", slug="cache")
    sink = io.BytesIO()
    strategy_for(service.template).backup(engine, fake_context(engine, service), sink)
    assert sink.getvalue() == rdb, "the payload is the RDB itself, not a tar"
    auth = (("REDISCLI_AUTH", PASSWORD),)
    c = service.container_name
    info = ("exec", c, ("redis-cli", "INFO", "persistence"), auth)
    time_guard = [] if counter else [("exec", c, ("redis-cli", "TIME"), auth)]
    assert engine.calls == [
        info,
        *time_guard,  # without a save counter, wait until LASTSAVE's second has passed
        ("exec", c, ("redis-cli", "BGSAVE", "SCHEDULE"), auth),
        info, info, info,
        ("get_archive", c, "/data/dump.rdb"),
    ]
    assert all(PASSWORD not in " ".join(call[2]) for call in engine.calls if call[0] == "exec"), "the password stays out of argv"


def test_redis_backup_fails_when_bgsave_fails():
    engine = RecordingEngine(exec_reply=RedisScript(status=b"err"), archives={})
    service = make_service("redis-7")
    with pytest.raises(BackupFailed, match="could not write its snapshot"):
        strategy_for(service.template).backup(engine, fake_context(engine, service), io.BytesIO())
    assert "get_archive" not in names(engine.calls)


def test_redis_restore_without_a_container_still_loads_the_volume(tmp_path):
    class NoContainer(RecordingEngine):
        def get_archive(self, name: str, path: str):
            self.calls.append(("get_archive", name, path))
            raise BackupFailed(f"{path} does not exist in {name}.")

    backup = read_backup(write_backup(tmp_path / "c.rdb", "redis-7", b"REDIS0011"))
    engine = NoContainer()
    service = make_service("redis-7")
    strategy_for(service.template).restore(engine, fake_context(engine, service), backup)
    assert names(engine.calls)[-3:] == ["put_archive", "start", "wait_ready"]
    with tarfile.open(fileobj=io.BytesIO(engine.put[0][2])) as archive:
        assert {(m.uid, m.gid) for m in archive.getmembers()} == {(0, 0)}


def test_redis_restore_contract_writes_an_aof_base(tmp_path):
    rdb = b"REDIS0011" + b"k" * 700
    backup = read_backup(write_backup(tmp_path / "c.rdb", "redis-7", rdb))
    owner = io.BytesIO()
    with tarfile.open(fileobj=owner, mode="w") as archive:
        info = tarfile.TarInfo("data")
        info.type, info.uid, info.gid = tarfile.DIRTYPE, 999, 1000
        archive.addfile(info)
    engine = RecordingEngine(archives={"/data": owner.getvalue()})
    service = make_service("redis-7", slug="cache")
    strategy_for(service.template).restore(engine, fake_context(engine, service), backup)
    c, v = service.container_name, service.volume_name
    assert engine.calls == [
        ("get_archive", c, "/data"),  # the owner of the data dir, for the new files
        ("stop", c), ("remove_container", c), ("remove_volume", v), ("ensure_volume", v),
        ("create_container", service.image, ()),
        ("put_archive", c, "/data"),
        ("start", c), ("wait_ready",),
    ]
    (_, _, data), = engine.put
    files = tar_contents(data)
    assert files == {
        "appendonlydir": None,
        "appendonlydir/appendonly.aof.1.base.rdb": rdb,
        "appendonlydir/appendonly.aof.1.incr.aof": b"",
        "appendonlydir/appendonly.aof.manifest": b"file appendonly.aof.1.base.rdb seq 1 type b\n"
                                                 b"file appendonly.aof.1.incr.aof seq 1 type i\n",
    }
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert {(m.uid, m.gid) for m in archive.getmembers()} == {(999, 1000)}


# -- contract: MongoDB ----------------------------------------------------------------------------

def test_mongodb_backup_contract():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(0, b"\x1f\x8barchive", b"writing..."))
    service = make_service("mongodb-7", slug="docs")
    sink = io.BytesIO()
    strategy_for(service.template).backup(engine, fake_context(engine, service), sink)
    config = (("PAAS_MONGO_CONFIG", f'password: "{PASSWORD}"'),)  # the password reaches the tool through its environment
    assert engine.calls == [("exec_stream", service.container_name,
                             ("sh", "-c", mongodb_kind.MONGO_WITH_CONFIG_SCRIPT, "paas-mongo-tool", "mongodump", "--archive", "--gzip",
                              "--username", "app", "--authenticationDatabase", "admin"), config)]
    assert sink.getvalue() == b"\x1f\x8barchive"


def test_mongodb_restore_contract_keeps_the_target_users(tmp_path):
    payload = b"\x1f\x8b" + b"m" * 400
    backup = read_backup(write_backup(tmp_path / "d.mongoarchive", "mongodb-7", payload))
    engine = RecordingEngine()
    service = make_service("mongodb-7", slug="docs")
    strategy_for(service.template).restore(engine, fake_context(engine, service), backup)
    (_, put_path, put_data), = engine.put
    (name, content), = tar_contents(put_data).items()
    assert put_path == "/tmp" and content == payload
    c = service.container_name
    assert engine.calls == [
        ("put_archive", c, "/tmp"),
        ("exec", c, ("sh", "-c", mongodb_kind.MONGO_WITH_CONFIG_SCRIPT, "paas-mongo-tool",
                     "mongorestore", f"--archive=/tmp/{name}", "--gzip", "--drop", "--nsExclude=admin.*",
                     "--username", "app", "--authenticationDatabase", "admin"), (("PAAS_MONGO_CONFIG", f'password: "{PASSWORD}"'),)),
        ("exec", c, ("rm", "-f", f"/tmp/{name}"), ()),
    ]


# -- contract: Meilisearch ------------------------------------------------------------------------

def test_meilisearch_backup_contract():
    requests = []
    answers = iter([(202, {"taskUid": 7, "status": "enqueued"}), (200, {"status": "processing"}),
                    (200, {"status": "succeeded", "details": {"dumpUid": "20250101-000000000"}})])

    def http(method, path):
        requests.append((method, path))
        return next(answers)

    dump_tar = tar_bytes({"20250101-000000000.dump": b"meili dump"})
    engine = RecordingEngine(archives={"/meili_data/dumps/20250101-000000000.dump": dump_tar})
    service = make_service("meilisearch-1.10", slug="search")
    sink = io.BytesIO()
    strategy_for(service.template).backup(engine, fake_context(engine, service, http), sink)
    assert requests == [("POST", "/dumps"), ("GET", "/tasks/7"), ("GET", "/tasks/7")]
    c = service.container_name
    assert engine.calls == [("get_archive", c, "/meili_data/dumps/20250101-000000000.dump"),
                            ("exec", c, ("rm", "-f", "/meili_data/dumps/20250101-000000000.dump"), ())]
    assert sink.getvalue() == dump_tar


def test_meilisearch_failed_dump_task_is_reported():
    answers = iter([(202, {"taskUid": 7}), (200, {"status": "failed", "error": {"message": "disk full"}})])
    engine = RecordingEngine()
    service = make_service("meilisearch-1.10")
    with pytest.raises(BackupFailed, match="failed.*disk full"):
        strategy_for(service.template).backup(engine, fake_context(engine, service, lambda m, p: next(answers)), io.BytesIO())


def test_meilisearch_restore_contract_imports_at_launch(tmp_path):
    payload = tar_bytes({"20250101-000000000.dump": b"meili dump"})
    backup = read_backup(write_backup(tmp_path / "s.meilidump.tar", "meilisearch-1.10", payload))
    service = make_service("meilisearch-1.10", slug="search")
    strategy = strategy_for(service.template)
    strategy.check_payload(backup, service.spec["volume"])
    engine = RecordingEngine()
    strategy.restore(engine, fake_context(engine, service), backup)
    c, v = service.container_name, service.volume_name
    dump = "/meili_data/20250101-000000000.dump"
    assert engine.calls == [
        ("stop", c), ("remove_container", c), ("remove_volume", v), ("ensure_volume", v),
        ("create_container", service.image, (("MEILI_IMPORT_DUMP", dump),)),
        ("put_archive", c, "/meili_data"),
        ("start", c), ("wait_ready",),  # the import happens before Meilisearch answers
        ("stop", c), ("remove_container", c),
        ("create_container", service.image, ()),  # then runs again without the import setting
        ("start", c), ("wait_ready",),
        ("exec", c, ("rm", "-f", dump), ()),
    ]
    assert engine.put[0][2] == payload


def test_meilisearch_payload_must_be_one_dump_file(tmp_path):
    service = make_service("meilisearch-1.10")
    for files in ({"a.dump": b"1", "b.dump": b"2"}, {"notes.txt": b"x"}, {"dir/a.dump": b"1"}):
        backup = read_backup(write_backup(tmp_path / "x", "meilisearch-1.10", tar_bytes(files)))
        with pytest.raises(InvalidBackup, match="exactly one Meilisearch .dump"):
            strategy_for(service.template).check_payload(backup, "/meili_data")


# -- contract: MinIO and Mailpit (archive of the volume, container stopped) ------------------------

@pytest.mark.parametrize("template_key", ["minio", "mailpit"])
@pytest.mark.parametrize("running", [True, False])
def test_volume_backup_contract(template_key, running):
    volume_tar = tar_bytes({"data/file": b"content"}, dirs=("data",))
    engine = RecordingEngine(archives={"/data": volume_tar}, running=running)
    service = make_service(template_key)
    sink = io.BytesIO()
    strategy_for(template_key).backup(engine, fake_context(engine, service), sink)
    c = service.container_name
    if running:
        assert engine.calls == [("inspect_container", c), ("stop", c), ("get_archive", c, "/data"), ("start", c), ("wait_ready",)]
    else:
        assert engine.calls == [("inspect_container", c), ("get_archive", c, "/data")], "a stopped service stays stopped"
    assert sink.getvalue() == volume_tar


def test_volume_backup_restarts_the_service_when_the_copy_fails():
    class Failing(RecordingEngine):
        def get_archive(self, name: str, path: str):
            self.calls.append(("get_archive", name, path))
            raise BackupFailed("lost the engine")

    engine = Failing()
    service = make_service("minio")
    with pytest.raises(BackupFailed):
        strategy_for("minio").backup(engine, fake_context(engine, service), io.BytesIO())
    assert names(engine.calls)[-2:] == ["start", "wait_ready"]


@pytest.mark.parametrize("template_key", ["minio", "mailpit"])
def test_volume_restore_contract(tmp_path, template_key):
    payload = tar_bytes({"data/file": b"content"}, dirs=("data",))
    backup = read_backup(write_backup(tmp_path / "v.tar", template_key, payload))
    service = make_service(template_key)
    strategy = strategy_for(template_key)
    strategy.check_payload(backup, service.spec["volume"])
    engine = RecordingEngine()
    strategy.restore(engine, fake_context(engine, service), backup)
    c, v = service.container_name, service.volume_name
    assert engine.calls == [("stop", c), ("remove_container", c), ("remove_volume", v), ("ensure_volume", v),
                            ("create_container", service.image, ()), ("put_archive", c, "/"), ("start", c), ("wait_ready",)]
    assert engine.put[0][2] == payload


def test_volume_payload_outside_the_mount_is_refused(tmp_path):
    backup = read_backup(write_backup(tmp_path / "v.tar", "minio", tar_bytes({"etc/cron.d/x": b"evil"})))
    with pytest.raises(InvalidBackup, match="outside data/"):
        strategy_for("minio").check_payload(backup, "/data")


# -- orchestration without Docker: nothing is touched before the file is checked --------------------

@pytest.fixture
def manager_with_fake_engine(isolated_home):
    from paas_svc.secrets.vault import Vault
    from paas_svc.state.home import ensure_home
    from paas_svc.state.store import open_store
    from paas_svc.usecases.lifecycle import ServiceManager

    home = ensure_home(isolated_home)
    store = open_store(home)
    engine = RecordingEngine()
    manager = ServiceManager(store, Vault(store, home), home, lambda: engine)
    yield manager, engine
    store.close()


@pytest.mark.parametrize("content", [b"", b"garbage\n", None])
def test_restore_of_a_bad_file_touches_nothing(tmp_path, manager_with_fake_engine, content):
    from paas_svc.usecases.data import DataOps

    manager, engine = manager_with_fake_engine
    path = tmp_path / "bad.rdb"
    if content is None:  # a valid backup of another kind
        write_backup(path, "postgres-16", b"PGDMP123")
    else:
        path.write_bytes(content)
    with pytest.raises(InvalidBackup, match="Nothing was changed"):
        DataOps(manager).restore(make_service("redis-7"), path)
    assert engine.calls == []
    assert not (manager.home / "backups").exists() or not any((manager.home / "backups").iterdir())


def test_upgrade_to_the_same_image_is_refused(manager_with_fake_engine):
    from paas_svc.errors import InvalidInput
    from paas_svc.usecases.data import DataOps

    manager, engine = manager_with_fake_engine
    service = make_service("redis-7")
    with pytest.raises(InvalidInput, match="already runs"):
        DataOps(manager).upgrade(service, service.image)
    assert engine.calls == []


def test_postgres_major_check_uses_the_data_dir_and_the_image(manager_with_fake_engine):
    from paas_svc.errors import Conflict
    from paas_svc.kinds.postgres import check_upgrade

    manager, engine = manager_with_fake_engine
    engine.exec_reply = lambda command: (ExecResult(0, b"15\n", b"") if command[0] == "sh"
                                         else ExecResult(0, b"postgres (PostgreSQL) 15.8\n", b""))
    service = make_service("postgres-16", slug="db")
    labels = {"paas.managed": "true"}
    with pytest.raises(Conflict) as caught:
        check_upgrade(engine, service, "postgres:17-alpine", labels)
    text = caught.value.message
    assert "PostgreSQL 15" in text and "PostgreSQL 17" in text and "Nothing was changed" in text
    assert "paas svc backup db --env production -o db.pgdump" in text
    assert "paas svc add db-pg17 --env production --template postgres-16 --image postgres:17-alpine" in text
    assert "paas svc restore db-pg17 db.pgdump --env production --yes" in text
    assert caught.value.exit_code == 4
    assert "run_once" not in names(engine.calls), "the tag gave the major"
    engine.calls.clear()
    assert check_upgrade(engine, service, "postgres:latest", labels) == (15, 15)
    assert ("run_once", "postgres:latest", ("--version",), ("postgres",)) in engine.calls


def test_a_failed_volume_restore_puts_the_previous_data_back(tmp_path, manager_with_fake_engine):
    from paas_svc.usecases.data import DataOps

    manager, engine = manager_with_fake_engine
    service = make_service("minio", slug="files")
    service.env_id = manager.store.get_environment("default", "production").id
    service.project = "default"
    service.secret = manager.vault.encrypt(credentials_for("minio"))
    manager.store.insert_service(service)
    manager.wait_ready = lambda svc, timeout: engine.calls.append(("wait_ready",))
    current = tar_bytes({"data/current": b"what was there"}, dirs=("data",))
    engine.archives["/data"] = current
    failures = iter([BackupFailed("no space left on device")])

    def put_archive(name, path, data):
        engine.calls.append(("put_archive", name, path))
        engine.put.append((name, path, data.read()))
        error = next(failures, None)
        if error:
            raise error

    engine.put_archive = put_archive
    incoming = write_backup(tmp_path / "new.tar", "minio", tar_bytes({"data/new": b"from the backup"}, dirs=("data",)))
    with pytest.raises(BackupFailed) as caught:
        DataOps(manager).restore(service, incoming)
    assert "no space left on device" in caught.value.message
    assert "The previous data was put back." in caught.value.message
    safety = Path(caught.value.hint.split(" is saved in ")[1].rstrip("."))
    assert safety.parent == manager.home / "backups" and safety.name.endswith("-pre-restore.tar")
    assert [put[2] for put in engine.put] == [tar_bytes({"data/new": b"from the backup"}, dirs=("data",)), current]
    order = names(engine.calls)
    assert order.index("get_archive") < order.index("put_archive"), "the safety backup comes first"
    assert order[-2:] == ["start", "wait_ready"]
    actions = [entry.action for entry in manager.store.list_audit()]
    assert actions == ["backup", "restore-failed"]
    assert manager.store.get_service_by_id(service.id).status == READY


def test_tool_errors_never_show_the_password(manager_with_fake_engine):
    from paas_svc.usecases.data import DataOps

    manager, engine = manager_with_fake_engine
    service = make_service("mongodb-7", slug="docs")
    service.env_id = manager.store.get_environment("default", "production").id
    service.project = "default"
    service.secret = manager.vault.encrypt(credentials_for("mongodb-7"))
    manager.store.insert_service(service)
    engine.exec_reply = lambda command: ExecResult(2, b"", f"error parsing options: -p {PASSWORD}".encode())
    with pytest.raises(BackupFailed) as caught:
        DataOps(manager).backup_to_path(service, manager.home / "docs.mongoarchive")
    assert PASSWORD not in caught.value.message and "********" in caught.value.message
    assert not (manager.home / "docs.mongoarchive").exists()
    assert [p.name for p in manager.home.iterdir() if p.name.startswith(".docs")] == [], "no temp file left"


def test_mongo_config_script_hands_the_password_to_the_tool_in_a_private_file_it_then_removes(tmp_path):
    """The script really runs (in a local sh): the tool finds `--config FILE`, mode 0600, holding
    the password; the file is gone afterwards and the tool's exit code comes back."""
    import os
    import subprocess

    seen = tmp_path / "seen"
    tool = tmp_path / "tool"
    tool.write_text('#!/bin/sh\nfor last; do :; done\nstat -c %a "$last" > "$SEEN"; cat "$last" >> "$SEEN"; echo "$last" >> "$SEEN"\n'
                    'echo "$@" >> "$SEEN"; env >> "$SEEN"; exit 3\n')
    tool.chmod(0o755)
    password = "pa'ss\"wo rd$x\\1"
    completed = subprocess.run(["sh", "-c", mongodb_kind.MONGO_WITH_CONFIG_SCRIPT, "paas-mongo-tool", str(tool), "--archive"],
                               env={"PATH": os.environ["PATH"], "SEEN": str(seen), "TMPDIR": str(tmp_path),
                                    mongodb_kind.MONGO_CONFIG_VARIABLE: mongodb_kind.mongo_config_text(password)})
    assert completed.returncode == 3
    mode, config, path, argv, *environment = seen.read_text().splitlines()
    assert mode == "600"
    assert json.loads(config.removeprefix("password: ")) == password, "a YAML double-quoted scalar"
    assert argv == f"--archive --config {path}" and password not in argv
    assert not any(line.startswith(mongodb_kind.MONGO_CONFIG_VARIABLE) for line in environment), "the tool does not inherit it"
    assert not Path(path).exists()


# -- hostile volume archives ------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(HOSTILE_ARCHIVES))
def test_hostile_volume_archives_are_refused(name):
    data, fragment = HOSTILE_ARCHIVES[name]
    with pytest.raises(InvalidBackup) as caught:
        check_volume_tar(io.BytesIO(data), "data")
    message = caught.value.message
    assert fragment in message and "Nothing was changed" in message
    assert message.isprintable(), "names from the archive are shown escaped"


def test_volume_archive_links_inside_the_volume_are_fine():
    data = crafted_tar(ROOT_DIR, tar_entry("data/sub", tarfile.DIRTYPE), tar_entry("data/sub/f", content=b"x"),
                       tar_entry("data/link", tarfile.SYMTYPE, "sub/f"), tar_entry("data/sub/up", tarfile.SYMTYPE, "f"),
                       tar_entry("data/hard", tarfile.LNKTYPE, "data/sub/f"), tar_entry("./data/sub/g", content=b"y"),
                       tar_entry("data/shared", tarfile.DIRTYPE, mode=0o2775))
    assert check_volume_tar(io.BytesIO(data), "data") == 8


@pytest.mark.parametrize("template_key", ["minio", "mailpit"])
def test_volume_restore_uploads_only_what_it_checked(tmp_path, template_key):
    """The file is checked, then replaced by a hostile one before the restore runs: the restore
    checks its own private copy and stops before touching the service."""
    good = tar_bytes({"data/file": b"content"}, dirs=("data",))
    backup = read_backup(write_backup(tmp_path / "v.tar", template_key, good))
    service = make_service(template_key)
    strategy = strategy_for(template_key)
    strategy.check_payload(backup, service.spec["volume"])
    evil, _ = HOSTILE_ARCHIVES["symlink-to-root-then-through-it"]
    write_backup(tmp_path / "v.tar", template_key, evil)  # same path, new header and payload
    swapped = read_backup(tmp_path / "v.tar")
    engine = RecordingEngine()
    with pytest.raises(InvalidBackup, match="symlink"):
        strategy.restore(engine, fake_context(engine, service), swapped)
    assert engine.calls == []
    (tmp_path / "v.tar").write_bytes(encode_header(header_for(template_key, good), pad_to=bk.RESERVED_HEADER_BYTES) + evil[:len(good)])
    with pytest.raises(InvalidBackup, match="changed after it was checked"):
        strategy.restore(engine, fake_context(engine, service), read_backup(tmp_path / "v.tar"))
    assert engine.calls == []


# -- header text: printable and bounded -------------------------------------------------------------

HOSTILE_HEADER_VALUES = {
    "escape-sequence": "\x1b[2J\x1b[31mowned",
    "newline": "cache\nerror: fake message",
    "carriage-return": "cache\rX",
    "nul": "cache\x00",
    "bidi-override": "cache\u202eexe.txt",
    "too-long": "x" * 10_000,
}


@pytest.mark.parametrize("field", sorted(bk.HEADER_TEXT_LIMITS))
@pytest.mark.parametrize("value_name", sorted(HOSTILE_HEADER_VALUES))
def test_header_text_must_be_printable_and_bounded(field, value_name):
    value = HOSTILE_HEADER_VALUES[value_name]
    line = json.dumps({**header_for().to_dict(), field: value}).encode()
    with pytest.raises(InvalidBackup) as caught:
        parse_header(line, "f.rdb")
    assert f"its {field} is empty, longer than" in caught.value.message
    assert value not in caught.value.message and caught.value.message.isprintable()


def test_header_limits_fit_what_paas_writes():
    longest = header_for(image="registry.example.com:5000/team/" + "p" * 200 + ":16@sha256:" + "a" * 64,
                         tool_version="v" * bk.MAX_TOOL_VERSION_CHARS, slug="s" * 40, project="p" * 40, env="e" * 40)
    assert parse_header(encode_header(longest)) == longest
    with pytest.raises(InvalidBackup):
        parse_header(json.dumps({**header_for().to_dict(), "slug": ""}).encode())


def test_a_tool_version_with_control_characters_is_made_printable():
    engine = RecordingEngine(exec_reply=lambda command: ExecResult(0, b"pg_dump \x1b[31m(PostgreSQL)\x07 16\n", b""))
    service = make_service("postgres-16")
    version = strategy_for("postgres-16").tool_version(engine, fake_context(engine, service))
    assert version == "pg_dump ?[31m(PostgreSQL)? 16"
    parse_header(encode_header(header_for("postgres-16", tool_version=version)))
