"""The query adapter: partition pruning, row-group pushdown, filters, keyset pages, damage."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from conftest import NOW, spread
from test_s3_emitter import read_all

from wafermon import Query
from wafermon_backend_s3 import reader
from wafermon_backend_s3.adapter import AdapterSettings, S3QueryAdapter
from wafermon_backend_s3.emitter import EmitterSettings, S3Emitter


@pytest.fixture
async def pair(settings):
    """A started (emitter, adapter) on one bucket and prefix."""
    emitter = S3Emitter("s3", settings(EmitterSettings, format="parquet", row_group_rows=100))
    adapter = S3QueryAdapter("s3", settings(AdapterSettings))
    await emitter.start()
    await adapter.start()
    yield emitter, adapter
    await adapter.close()
    await emitter.close()


async def test_row_group_statistics_skip_what_the_time_range_cannot_touch(
    pair, monkeypatch, make_event
):
    emitter, adapter = pair
    start = NOW - timedelta(hours=3)
    written = [  # 30 row groups of 100 in one hour; random metadata gives them some bulk
        make_event(time=start + timedelta(seconds=i), metadata={"pad": os.urandom(100).hex()})
        for i in range(3000)
    ]
    await emitter.emit(written)
    # Force ranged reads (footer, then only the chosen row groups) even for a small object.
    monkeypatch.setattr(reader, "WHOLE_OBJECT_BYTES", 0)
    (obj,) = await adapter.bucket.list_objects("wafermon/")
    window = Query(start=start + timedelta(seconds=1000), end=start + timedelta(seconds=1150))
    before = adapter.bucket.counters["get_bytes"]
    got, _ = await read_all(adapter, window)
    assert got == [e for e in written if window.matches(e)]
    assert len(got) == 150
    assert adapter.counters["row_groups_read"] <= 3  # 1000-1149 spans groups 10 and 11
    assert adapter.counters["row_groups_skipped"] >= 27
    assert adapter.bucket.counters["get_bytes"] - before < obj.size / 4

    # A first page stops at the row group that fills it: later groups hold later events.
    adapter.counters.clear()
    page = await adapter.query(Query(limit=50))
    assert page.events == written[:50]
    assert adapter.counters["row_groups_read"] == 1


async def test_partitions_outside_the_site_or_range_are_not_read(pair):
    emitter, adapter = pair
    days = [NOW - timedelta(days=d) for d in (9, 6, 3, 1)]
    written = [
        e
        for day in days
        for site in ("fab1", "fab2")
        for e in spread(day, 20, timedelta(minutes=1), site_id=site)
    ]
    await emitter.emit(written)
    query = Query(
        site_id="fab2", start=days[1] - timedelta(hours=1), end=days[2] + timedelta(hours=1)
    )
    got, _ = await read_all(adapter, query)
    assert got == sorted((e for e in written if query.matches(e)), key=lambda e: e.sort_key)
    assert len(got) == 40
    assert adapter.counters["partitions_read"] == 2
    assert adapter.counters["partitions_skipped"] == 1  # the later day; the earlier is not listed


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
async def test_filters_agree_with_query_matches(settings, fmt):
    emitter = S3Emitter("s3", settings(EmitterSettings, format=fmt))
    adapter = S3QueryAdapter("s3", settings(AdapterSettings))
    await emitter.start()
    await adapter.start()
    try:
        written = spread(NOW - timedelta(hours=30), 120, timedelta(minutes=13))
        written += spread(NOW - timedelta(hours=20), 40, timedelta(minutes=7), site_id="fab2")
        await emitter.emit(written)
        for filters in (
            {"status": "failed"},
            {"status": "running"},
            {"app": "litho"},
            {"entity_id": written[7].entity.id},
            {"business_key": "lot3"},
            {"site_id": "fab2", "app": "etch"},
            {"start": NOW - timedelta(hours=25), "end": NOW - timedelta(hours=19)},
        ):
            query = Query(**filters, limit=40)
            got, _ = await read_all(adapter, query)
            expected = sorted((e for e in written if query.matches(e)), key=lambda e: e.sort_key)
            assert got == expected, filters
            assert expected, filters  # each filter selects something, so the check means something
    finally:
        await adapter.close()
        await emitter.close()


async def test_a_cursor_continues_across_days_without_gaps_or_repeats(pair):
    emitter, adapter = pair
    written = spread(NOW - timedelta(days=3), 500, timedelta(minutes=9))
    # A copy of some events under other keys, as at-least-once delivery may leave.
    await emitter.emit(written)
    await emitter.emit(written[100:180] + written[:3])
    got, pages = await read_all(adapter, Query(limit=45))
    assert [e.event_id for e in got] == [e.event_id for e in written]
    assert pages[:-1] == [45] * (len(pages) - 1)


async def test_a_corrupt_object_is_skipped_and_the_rest_answers(pair, bucket):
    emitter, adapter = pair
    good = spread(NOW - timedelta(hours=10), 30, timedelta(minutes=1))
    bad = spread(NOW - timedelta(hours=5), 30, timedelta(minutes=1))
    await emitter.emit(good + bad)
    bad_key = next(
        o.key
        for o in await bucket.list_objects("wafermon/")
        if "hour=" + f"{bad[0].time:%H}" in o.key
    )
    await bucket.put(
        bad_key, b"PAR1 not really parquet", "application/octet-stream", multipart_above=1 << 30
    )
    got, _ = await read_all(adapter)
    assert [e.event_id for e in got] == [e.event_id for e in good]
    assert adapter.counters["corrupt_objects"] == 1


async def test_a_site_id_no_object_can_have_reads_nothing(pair):
    emitter, adapter = pair
    await emitter.emit(spread(NOW - timedelta(hours=2), 5, timedelta(minutes=1)))
    lists = adapter.bucket.counters["list"]
    result = await adapter.query(Query(site_id="fab1/date=2026-01-01"))
    assert result.events == []
    assert adapter.bucket.counters["list"] == lists  # refused before any request
