"""The compactor: 1,000 small objects of a closed day become a few, corrupt ones are
quarantined, and an interrupted compaction is finished by the next pass."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from conftest import NOW, spread
from test_s3_archive import cold_ids
from test_s3_emitter import read_all

from wafermon import Query
from wafermon_backend_s3 import ArchiveReport, ArchiveSettings, layout, reader
from wafermon_backend_s3.adapter import AdapterSettings, S3QueryAdapter
from wafermon_backend_s3.compact import Compactor
from wafermon_backend_s3.emitter import EmitterSettings, S3Emitter

DAY = (NOW - timedelta(days=4)).replace(hour=0)


async def small_objects(settings, count: int) -> list:
    """``count`` one-event objects in one day, as a sidecar writing tiny batches would leave
    them: JSONL, every 20th Parquet (cheaper to make in a test, and both formats are read)."""
    written = spread(DAY, count, timedelta(seconds=80))
    limit = asyncio.Semaphore(16)
    emitters = [S3Emitter("s3", settings(EmitterSettings, format=f)) for f in ("jsonl", "parquet")]
    for emitter in emitters:
        await emitter.start()

    async def one(i: int) -> None:
        async with limit:
            await emitters[1 if i % 20 == 0 else 0].write([written[i]])

    try:
        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        for emitter in emitters:
            await emitter.close()
    return written


async def test_a_thousand_small_objects_become_a_few_and_corrupt_ones_are_quarantined(
    settings, bucket
):
    written = await small_objects(settings, 1000)
    objects = await bucket.list_objects("wafermon/")
    assert len(objects) == 1000
    jsonl, parquet = (
        next(o.key for o in objects if o.key.endswith(ext)) for ext in (".jsonl.gz", ".parquet")
    )
    for key in (jsonl, parquet):  # damage one object of each format
        await bucket.put(
            key, b"\x1f\x8b not what it was", "application/octet-stream", multipart_above=1 << 30
        )

    report = ArchiveReport()
    archive = ArchiveSettings(target_object_bytes=2**20)
    await Compactor(bucket, "wafermon", archive, report).run(DAY.date(), NOW.date(), NOW)

    assert sorted(report.quarantined) == sorted([jsonl, parquet])
    assert report.compacted_inputs == 998
    left = reader.committed(await bucket.list_objects("wafermon/site="))
    assert all(layout.is_archive(o.key) for o in left)
    assert 1 <= len(left) == report.compacted_outputs <= 3  # inputs ~1-3 KB each
    quarantined = {o.key for o in await bucket.list_objects("wafermon/_wafermon/quarantine/")}
    assert {layout.quarantine_key("wafermon", k) for k in (jsonl, parquet)} <= quarantined
    assert not await bucket.list_objects("wafermon/_wafermon/compact/")

    # Every event of the undamaged objects is in exactly one archive object, and readable.
    cold = await cold_ids(bucket)
    assert len(cold) == len(set(cold)) == 998
    adapter = S3QueryAdapter("s3", settings(AdapterSettings))
    await adapter.start()
    try:
        got, _ = await read_all(adapter, Query(limit=10_000))
    finally:
        await adapter.close()
    assert {e.event_id for e in got} == set(cold)
    assert {e.event_id for e in got} < {e.event_id for e in written}  # all but the damaged two


async def test_an_interrupted_compaction_is_finished_by_the_next_pass(
    settings, bucket, monkeypatch
):
    written = await small_objects(settings, 60)
    archive = ArchiveSettings()
    original = Compactor._remove
    calls = Counter()

    async def crash_once(self, keys):
        calls["remove"] += 1
        if calls["remove"] == 1:  # the merged manifest is written; the inputs are still there
            raise ConnectionError("simulated crash before the inputs were removed")
        await original(self, keys)

    monkeypatch.setattr(Compactor, "_remove", crash_once)
    with pytest.raises(ConnectionError):
        await Compactor(bucket, "wafermon", archive, ArchiveReport()).run(
            DAY.date(), NOW.date(), NOW
        )
    assert len(await bucket.list_objects("wafermon/_wafermon/compact/")) == 1

    report = ArchiveReport()
    await Compactor(bucket, "wafermon", archive, report).run(DAY.date(), NOW.date(), NOW)
    assert report.recovered == 1
    cold = await cold_ids(bucket)
    assert sorted(cold) == sorted(e.event_id for e in written)  # once each, nothing lost
    assert len(reader.committed(await bucket.list_objects("wafermon/site="))) == 1
    assert not await bucket.list_objects("wafermon/_wafermon/compact/")
