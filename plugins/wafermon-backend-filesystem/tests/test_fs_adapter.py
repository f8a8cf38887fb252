from __future__ import annotations

import asyncio
import gzip
import logging
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wafermon import Query, decode_event, encode_ndjson
from wafermon_backend_filesystem import (
    AdapterSettings,
    EmitterSettings,
    FilesystemEmitter,
    FilesystemQueryAdapter,
    layout,
)


def write(root: Path, name: str, events, *, site="fab1", day="2026-11-28") -> Path:
    """Put events in a file by hand, the way a (possibly crashed) emitter would have."""
    path = root / site / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode_ndjson(events)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


async def test_pagination_three_pages_no_gaps_no_duplicates(emitter, adapter, make_event, t0):
    # Ten events share each timestamp, so pages also split ties (broken by event_id).
    events = [make_event(time=t0 + timedelta(seconds=i // 10)) for i in range(250)]
    await emitter.emit(events[::2])
    await emitter.emit(events[1::2])
    pages, cursor = [], None
    while True:
        result = await adapter.query(Query(limit=100, cursor=cursor))
        pages.append(result.events)
        cursor = result.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [e for page in pages for e in page] == sorted(events, key=lambda e: e.sort_key)


async def test_exactly_one_full_page_has_no_next_cursor(emitter, adapter, make_event):
    await emitter.emit([make_event() for _ in range(10)])
    result = await adapter.query(Query(limit=10))
    assert len(result.events) == 10
    assert result.next_cursor is None


# make_event is a plain function, so sharing the fixture between examples is harmless.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seconds=st.lists(st.integers(0, 3 * 86400), min_size=0, max_size=40),
    limit=st.integers(1, 15),
)
def test_pages_concatenate_to_the_sorted_events(seconds, limit, make_event, t0):
    events = [make_event(time=t0 + timedelta(seconds=s)) for s in seconds]

    async def scenario(root: Path) -> list:
        emitter = FilesystemEmitter("fs", EmitterSettings(root=root, rotate_bytes=2000))
        await emitter.start()
        await emitter.emit(events)
        await emitter.emit(events[: len(events) // 2])  # a redelivery: must not show twice
        await emitter.close()
        adapter = FilesystemQueryAdapter("fs", AdapterSettings(root=root))
        got, cursor = [], None
        while True:
            result = await adapter.query(Query(limit=limit, cursor=cursor))
            assert len(result.events) <= limit
            got += result.events
            if (cursor := result.next_cursor) is None:
                return got

    with tempfile.TemporaryDirectory() as tmp:
        got = asyncio.run(scenario(Path(tmp)))
    assert got == sorted(events, key=lambda e: e.sort_key)


async def test_filters(emitter, adapter, make_event):
    base = make_event()
    other_site = make_event(site_id="fab2")
    other_app = make_event(app="litho")
    subjob = make_event(entity_type="subjob")
    finished = make_event(kind="finished")
    failed = make_event(kind="failed")
    progress = make_event(kind="progress")
    keyed = make_event(business_key="LOT-42")
    everything = [base, other_site, other_app, subjob, finished, failed, progress, keyed]
    await emitter.emit(everything)

    async def ids(**filters) -> list:
        return [e.event_id for e in (await adapter.query(Query(**filters))).events]

    def expect(*events) -> list:
        return [e.event_id for e in events]

    fab1 = [e for e in everything if e is not other_site]
    assert await ids(site_id="fab1") == expect(*fab1)
    assert await ids(site_id="fab2") == expect(other_site)
    assert await ids(site_id="nowhere") == []
    assert await ids(app="litho") == expect(other_app)
    assert await ids(entity_type="subjob") == expect(subjob)
    assert len(await ids(entity_type="job")) == len(everything) - 1
    assert await ids(status="finished") == expect(finished)
    assert await ids(status="failed") == expect(failed)
    running = [e for e in everything if e.kind in ("started", "progress")]
    assert await ids(status="running") == expect(*running)
    assert await ids(business_key="LOT-42") == expect(keyed)
    assert await ids(entity_id=base.entity.id) == expect(base)
    # time range is half-open: start inclusive, end exclusive
    assert await ids(start=other_app.time, end=finished.time) == expect(other_app, subjob)


async def test_time_range_reads_only_overlapping_date_dirs(emitter, adapter, root, make_event, t0):
    today = make_event(time=t0)
    yesterday = make_event(time=t0 - timedelta(days=1))
    await emitter.emit([today, yesterday])
    # Events filed under the wrong day are invisible to a query whose range skips that day:
    # proof that the adapter did not open that directory.
    write(root, "events.20261128T000000000000Z.jsonl.gz", [make_event(time=t0)], day="2026-11-20")
    write(root, "events.20261128T000000000000Z.jsonl.gz", [make_event(time=yesterday.time)])
    midnight = t0.replace(hour=0, minute=0)
    result = await adapter.query(Query(start=midnight, end=midnight + timedelta(days=1)))
    assert result.events == [today]
    # end is exclusive: a range ending at midnight does not read the day that starts then
    assert (await adapter.query(Query(end=midnight))).events == [yesterday]


async def test_undecodable_lines_are_skipped_with_one_warning(adapter, root, caplog, make_event):
    good = [make_event(), make_event()]
    path = write(root, "events.jsonl", good[:1])
    with path.open("ab") as f:
        f.write(b"not json\n")
        f.write(b'{"schema_version": 1, "event_id": "nope"}\n')
        f.write(encode_ndjson(good[1:]))
    caplog.set_level(logging.WARNING)
    result = await adapter.query(Query())
    assert result.events == good
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"skipped 2 undecodable lines in {path} (2)"]


async def test_a_write_in_progress_is_not_reported(adapter, root, caplog, make_event):
    good = make_event()
    path = write(root, "events.jsonl", [good])
    with path.open("ab") as f:
        f.write(b'{"schema_version": 1, "event_')
    caplog.set_level(logging.WARNING)
    assert (await adapter.query(Query())).events == [good]
    assert caplog.records == []


async def test_truncated_gzip_yields_its_readable_part(adapter, root, caplog, make_event):
    events = [make_event(metadata={"n": i}) for i in range(2000)]
    path = write(root, "events.20261128T100000000000Z.jsonl.gz", events)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    later = make_event()
    write(root, "events.jsonl", [later])
    caplog.set_level(logging.WARNING)
    result = await adapter.query(Query(limit=10_000))
    assert 0 < len(result.events) < 2001
    assert result.events[: len(result.events) - 1] == events[: len(result.events) - 1]
    assert result.events[-1] == later  # the next file was still read
    assert "is truncated or corrupt" in caplog.text


async def test_plain_file_with_gz_twin_is_not_read(adapter, root, make_event):
    a, b = make_event(), make_event()
    write(root, "events.20261128T100000000000Z.jsonl.gz", [a])
    write(root, "events.20261128T100000000000Z.jsonl", [a, b])
    assert (await adapter.query(Query())).events == [a]


async def test_repeated_events_are_returned_once(emitter, adapter, root, make_event):
    events = [make_event() for _ in range(5)]
    await emitter.emit(events)
    await emitter.emit(events[1:3])
    write(root, "events.20261128T100000000000Z.jsonl.gz", events[2:])
    result = await adapter.query(Query(limit=3))
    assert result.events == events[:3]
    result = await adapter.query(Query(limit=3, cursor=result.next_cursor))
    assert result.events == events[3:]
    assert result.next_cursor is None


async def test_stray_files_and_dirs_are_ignored(adapter, root, make_event):
    event = make_event()
    write(root, "events.jsonl", [event])
    write(root, "notes.txt", [make_event()])
    write(root, "events.jsonl", [make_event()], day="not-a-date")
    write(root, "events.jsonl", [make_event()], day="20261128")
    write(root, "events.20261128T100000000000Z.jsonl.gz.tmp", [make_event()])
    (root / "README").write_text("hello")
    assert (await adapter.query(Query())).events == [event]


async def test_a_query_site_id_cannot_leave_root(adapter, root, tmp_path, make_event):
    write(tmp_path, "events.jsonl", [make_event()], site="outside")
    root.mkdir()
    assert (await adapter.query(Query(site_id="../outside"))).events == []


async def test_symbolic_links_below_root_are_not_followed(adapter, root, tmp_path, make_event):
    """A link in root (a site, a day or a file) could point anywhere: nothing behind one is
    read, whatever it holds; the real files next to them still are."""
    inside = make_event()
    write(root, "events.jsonl", [inside])
    outside = tmp_path / "outside"
    write(outside, "events.jsonl", [make_event()], site="fab9")
    write(outside, "events.b.jsonl", [make_event()], site="fab1")
    (root / "fab9").symlink_to(outside / "fab9")  # a site folder
    (root / "fab1" / "2026-11-29").symlink_to(outside / "fab1" / "2026-11-28")  # a day
    (root / "fab1" / "2026-11-28" / "events.c.jsonl").symlink_to(
        outside / "fab1" / "2026-11-28" / "events.b.jsonl"  # a file
    )
    assert (await adapter.query(Query())).events == [inside]
    assert (await adapter.query(Query(site_id="fab9"))).events == []


def test_a_file_swapped_for_a_link_after_listing_is_refused_by_the_open(root, make_event):
    secret = root.parent / "secret.jsonl"
    secret.write_bytes(encode_ndjson([make_event()]))
    pdir = root / "fab1" / "2026-11-28"
    pdir.mkdir(parents=True)
    (pdir / "events.jsonl").symlink_to(secret)
    assert list(layout.partition_lines(pdir, follow_symlinks=False)) == []
    assert len(list(layout.partition_lines(pdir))) == 1  # the emitter's own reads still follow


async def test_missing_root_gives_an_empty_answer_and_bad_health(adapter):
    assert (await adapter.query(Query())).events == []
    health = await adapter.health()
    assert not health.ok
    assert "is missing or not a readable directory" in health.detail


async def test_health_ok(emitter, adapter):
    assert (await adapter.health()).ok


def test_a_file_rotated_away_while_reading_is_still_read(root, make_event):
    first, second = make_event(), make_event()
    write(root, "events.20261128T100000000000Z.jsonl.gz", [first])
    active = write(root, "events.jsonl", [second])
    lines = layout.partition_lines(active.parent)
    got = [next(lines)]  # the partition is listed and its first file opened
    active.rename(active.with_name("events.20261128T110000000000Z.jsonl"))  # a rotation
    got += list(lines)
    # The listed active file vanished before it was opened, so the partition was read again.
    events = [decode_event(line) for _path, line in got]
    assert events == [first, first, second]
