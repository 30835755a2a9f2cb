"""Point-in-time recovery without an engine: the archive's names, the window, which base backup
and which WAL files a recovery to a time takes, retention, stall detection, the recovery
command, and the pipe between a pushing producer and a pulling consumer."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from paas_svc.errors import InvalidInput, NotFound
from paas_svc.kinds import postgres
from paas_svc.usecases.backups import pitr

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)


def base(start: datetime, wal: str, end: datetime | None) -> list[str]:
    name = f"{pitr.stamp(start)}-{wal}{pitr.BASE_SUFFIX}"
    found = [f"/nas/p/e/db/pitr/base/{name}"]
    if end is not None:
        found.append(f"/nas/p/e/db/pitr/base/{name}{pitr.END_MARK}{pitr.stamp(end)}")
    return found


def wal(wal_file: str, closed: datetime) -> str:
    return f"/nas/p/e/db/pitr/wal/{wal_file}-{pitr.stamp(closed)}{pitr.WAL_SUFFIX}"


def segment(timeline: int, number: int) -> str:
    return f"{timeline:08X}{0:08X}{number:08X}"


def sample():
    """Two daily base backups; a segment closed every ten minutes from T0 to T0 + 2 days."""
    bases = base(T0, segment(1, 1), T0 + timedelta(minutes=2)) + base(T0 + timedelta(days=1), segment(1, 145),
                                                                       T0 + timedelta(days=1, minutes=2))
    wals = [wal(segment(1, number), T0 + timedelta(minutes=10 * number)) for number in range(1, 289)]
    return pitr.read_listing(bases, wals)


def test_listing_reads_names_and_window():
    listing = sample()
    assert [b.start_wal for b in listing.bases] == [segment(1, 1), segment(1, 145)]
    assert listing.earliest == T0 + timedelta(minutes=2)
    assert listing.latest == T0 + timedelta(minutes=2880)
    assert len(listing.segments) == 288


def test_a_base_without_its_end_marker_is_not_used():
    listing = pitr.read_listing(base(T0, segment(1, 1), None), [wal(segment(1, 1), T0 + timedelta(minutes=1))])
    assert listing.bases == [] and len(listing.incomplete) == 1
    assert listing.earliest is None
    with pytest.raises(NotFound):
        pitr.choose_base(listing, None)


def test_choose_base_takes_the_newest_that_ended_before_the_time():
    listing = sample()
    assert pitr.choose_base(listing, T0 + timedelta(hours=20)).start_wal == segment(1, 1)
    assert pitr.choose_base(listing, T0 + timedelta(days=1, hours=1)).start_wal == segment(1, 145)
    assert pitr.choose_base(listing, None).start_wal == segment(1, 145)
    with pytest.raises(InvalidInput, match="before the restorable window"):
        pitr.choose_base(listing, T0 + timedelta(minutes=1))
    with pytest.raises(InvalidInput, match="after the latest restorable time"):
        pitr.choose_base(listing, T0 + timedelta(days=3))


def test_segments_for_a_time_start_at_the_base_and_stop_just_after_the_time():
    listing = sample()
    chosen = pitr.choose_base(listing, T0 + timedelta(days=1, hours=1))
    wanted = pitr.segments_for(listing, chosen, T0 + timedelta(days=1, hours=1, minutes=5))
    names = [s.wal_file for s in wanted]
    assert names[0] == segment(1, 145)
    assert names[-1] == segment(1, 152)  # closed at +1d1h10 and +1d1h20: the two after the time
    assert pitr.segments_for(listing, chosen, None)[-1].wal_file == segment(1, 288)


def test_history_files_always_go_and_partial_files_never():
    listing = pitr.read_listing(base(T0, segment(1, 3), T0 + timedelta(minutes=1)),
                                [wal(segment(1, 3), T0 + timedelta(minutes=2)), wal("00000002.history", T0 + timedelta(minutes=3)),
                                 wal(segment(1, 4) + ".partial", T0 + timedelta(minutes=3)), wal(segment(2, 4), T0 + timedelta(minutes=4))])
    names = [s.wal_file for s in pitr.segments_for(listing, listing.bases[0], None)]
    assert names == [segment(1, 3), "00000002.history", segment(2, 4)]


def test_a_segment_shipped_twice_counts_once():
    listing = pitr.read_listing([], [wal(segment(1, 3), T0), wal(segment(1, 3), T0 + timedelta(seconds=61))])
    assert len(listing.segments) == 1 and listing.segments[0].closed == T0 + timedelta(seconds=61)


def test_retention_keeps_what_the_window_needs():
    listing = sample()
    # Window of 12 hours at T0 + 2d: the second base reaches its start; the first is no longer needed.
    doomed = set(pitr.retention_plan(listing, T0 + timedelta(days=2), 12 * 3600))
    first = listing.bases[0]
    assert {first.location, first.marker} <= doomed
    assert all(s.location in doomed for s in listing.segments if s.wal_file < segment(1, 144))  # 144 closed as the base began
    assert not any(s.location in doomed for s in listing.segments if s.wal_file >= segment(1, 145))
    # Window of one day at T0 + 2d: the window starts before the second base ended: the first is kept, with its WAL.
    assert pitr.retention_plan(listing, T0 + timedelta(days=2), 86400) == []


def test_retention_removes_failed_uploads_after_a_day():
    listing = pitr.read_listing(base(T0, segment(1, 1), T0 + timedelta(minutes=1)) + base(T0 + timedelta(hours=1), segment(1, 9), None), [])
    assert pitr.retention_plan(listing, T0 + timedelta(hours=2), 86400) == []
    assert pitr.retention_plan(listing, T0 + timedelta(days=2), 7 * 86400) == [listing.incomplete[0].location]


def test_window_and_target_parsing():
    assert pitr.parse_window("7d") == 7 * 86400 and pitr.parse_window("36h") == 36 * 3600
    assert pitr.format_window(36 * 3600) == "36h"
    for bad in ("7", "30m", "1w", ""):
        with pytest.raises(InvalidInput):
            pitr.parse_window(bad)
    assert pitr.parse_target("latest") is None
    when = pitr.parse_target("2026-12-06T16:04:17.123456Z")
    assert pitr.pg_time(when) == "2026-12-06 16:04:17.123456+00"
    assert pitr.describe_target(when) == "2026-12-06T16:04:17.123456Z"
    assert pitr.parse_target("2026-12-06T17:04:17+01:00") == datetime(2026, 12, 6, 16, 4, 17, tzinfo=timezone.utc)
    with pytest.raises(InvalidInput):
        pitr.parse_target("yesterday")


def config(**changes) -> pitr.PitrConfig:
    values = dict(service_id="s", destination="nas", window_seconds=86400, base_every="daily", enabled_at="", next_base_due="",
                  last_base_at=None, last_ship_at=None, last_shipped_wal=None, last_error=None, last_error_at=None)
    values.update(changes)
    return pitr.PitrConfig(**values)


def test_stalls_are_reported():
    now = T0 + timedelta(hours=1)
    healthy = pitr.SpoolState(1, 1000, now - timedelta(seconds=30), [])
    archiver = {"archive_mode": "on", "last_archived_at": "2026-12-01T03:59:00Z", "last_failed_at": None}
    assert pitr.archiving_problems(config(), healthy, archiver, now) == []
    stalled = pitr.SpoolState(6, 1000, now - timedelta(minutes=6), [])
    assert any("stalled" in p for p in pitr.archiving_problems(config(), stalled, archiver, now))
    failing = {**archiver, "last_failed_at": "2026-12-01T03:59:30Z", "last_failed_wal": "X"}
    assert any("archive_command is failing" in p for p in pitr.archiving_problems(config(), healthy, failing, now))
    full = pitr.SpoolState(60, postgres.SPOOL_LIMIT_BYTES // 2, now, [])
    assert any("spool holds" in p for p in pitr.archiving_problems(config(), full, archiver, now))
    assert any("shipping" in p for p in pitr.archiving_problems(config(last_error="down", last_error_at="x"), healthy, archiver, now))
    assert any("archive_mode is off" in p for p in pitr.archiving_problems(config(), healthy, {**archiver, "archive_mode": "off"}, now))


def test_archive_command_is_bounded_and_atomic():
    command = postgres.archive_command(10 * 1024 * 1024)
    assert "-ge 10240" in command and "exit 1" in command  # full: fail, so PostgreSQL keeps the WAL and retries
    assert command.index(".gz.part") < command.index("mv -f")  # never half a file under the final name
    assert "'" not in command  # it goes into ALTER SYSTEM as a literal


def test_recovery_command():
    command = postgres.recovery_command("/var/lib/postgresql/data", "2026-12-06 16:04:17.5+00", archive=False)
    assert command[:2] == ["sh", "-c"] and "docker-entrypoint.sh" in command[2]
    settings = command[command.index("postgres"):]
    assert "recovery_target_time=2026-12-06 16:04:17.5+00" in settings and "recovery_target_inclusive=off" in settings
    assert "recovery_target_action=promote" in settings and "archive_mode=off" in settings
    latest = postgres.recovery_command("/data", None, archive=True)
    assert not any(item.startswith("recovery_target_time=") for item in latest) and "archive_mode=off" not in latest


def test_piped_streams_and_reports_the_producer_failure():
    def produce(sink):
        for _ in range(64):
            sink.write(b"x" * 65536)

    with pitr.piped(produce) as reader:
        assert sum(len(chunk) for chunk in pitr.chunks(reader)) == 64 * 65536

    def failing(sink):
        sink.write(b"partial")
        raise InvalidInput("the producer failed")

    with pytest.raises(InvalidInput, match="producer failed"):
        with pitr.piped(failing) as reader:
            reader.read()


def test_piped_consumer_stopping_early_ends_the_producer():
    def produce(sink):
        while True:
            sink.write(b"y" * 65536)

    with pytest.raises(BrokenPipeError):
        with pitr.piped(produce) as reader:
            io.BytesIO(reader.read(10))
