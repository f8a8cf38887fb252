from __future__ import annotations

import asyncio
import gzip
import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wafermon import PermanentError, Query, RetryableError, decode_batch, encode_ndjson
from wafermon_backend_filesystem import EmitterSettings, FilesystemEmitter
from wafermon_backend_filesystem.emitter import MAX_OPEN_FILES


async def started(root: Path, **settings) -> FilesystemEmitter:
    em = FilesystemEmitter("fs", EmitterSettings(root=root, **settings))
    await em.start()
    return em


def read_all(pdir: Path) -> list:
    """Every event in a partition, from plain and gzip files alike."""
    events = []
    for path in sorted(pdir.iterdir()):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        events += decode_batch(data).events
    return events


async def test_emit_then_query_round_trip(emitter, adapter, make_event):
    events = [make_event() for _ in range(5)]
    await emitter.emit(list(reversed(events)))
    result = await adapter.query(Query())
    assert result.events == events
    assert result.next_cursor is None


async def test_batch_spanning_two_sites_and_two_dates(emitter, root, make_event, t0):
    day2 = t0 + timedelta(days=1)
    batch = [
        make_event(site_id="fab1", time=t0),
        make_event(site_id="fab1", time=day2),
        make_event(site_id="fab2", time=t0),
        make_event(site_id="fab2", time=day2),
        make_event(site_id="fab2", time=day2 + timedelta(seconds=1)),
    ]
    await emitter.emit(batch)
    files = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name.startswith("events")
    )
    assert files == [
        "fab1/2026-11-28/events.jsonl",
        "fab1/2026-11-29/events.jsonl",
        "fab2/2026-11-28/events.jsonl",
        "fab2/2026-11-29/events.jsonl",
    ]
    assert read_all(root / "fab2" / "2026-11-29") == batch[3:]


async def test_partition_date_is_the_utc_date(emitter, root, make_event):
    # 23:30 UTC on the 28th is already the 29th in most of Asia; the UTC date decides.
    await emitter.emit([make_event(time=datetime(2026, 11, 28, 23, 30, tzinfo=UTC))])
    assert (root / "fab1" / "2026-11-28" / "events.jsonl").exists()


async def test_rotation_by_size_writes_gzip(root, adapter, make_event):
    em = await started(root, rotate_bytes=1)
    events = [make_event() for _ in range(3)]
    for event in events:
        await em.emit([event])
    pdir = root / "fab1" / "2026-11-28"
    names = sorted(p.name for p in pdir.iterdir())
    assert len(names) == 3
    assert all(n.startswith("events.") and n.endswith("Z.jsonl.gz") for n in names)
    assert read_all(pdir) == events
    assert (await adapter.query(Query())).events == events
    await em.close()


async def test_rotation_by_age_and_query_reads_gz_and_plain(root, adapter, make_event):
    em = await started(root, rotate_after=0.05)
    first, second, third = make_event(), make_event(), make_event()
    await em.emit([first])
    pdir = root / "fab1" / "2026-11-28"
    assert [p.name for p in pdir.iterdir()] == ["events.jsonl"]  # too young to rotate
    await asyncio.sleep(0.06)
    await em.emit([second])  # the file is now old enough: rotated after this write
    assert [p.suffix for p in pdir.iterdir()] == [".gz"]
    await em.emit([third])  # a fresh active file
    assert sorted(p.suffix for p in pdir.iterdir()) == [".gz", ".jsonl"]
    assert (await adapter.query(Query())).events == [first, second, third]
    await em.close()


async def test_age_of_a_file_found_at_start_is_its_mtime(root, make_event):
    em = await started(root)
    await em.emit([make_event()])
    await em.close()
    active = root / "fab1" / "2026-11-28" / "events.jsonl"
    an_hour_ago = active.stat().st_mtime - 3600
    os.utime(active, (an_hour_ago, an_hour_ago))
    em = await started(root, rotate_after=1800)
    await em.emit([make_event()])
    assert not active.exists()
    assert len(read_all(active.parent)) == 2
    await em.close()


async def test_rotation_without_compression_keeps_plain_files(root, adapter, make_event):
    em = await started(root, rotate_bytes=1, compress=False)
    events = [make_event(), make_event()]
    for event in events:
        await em.emit([event])
    names = [p.name for p in (root / "fab1" / "2026-11-28").iterdir()]
    assert len(names) == 2
    assert all(n.endswith("Z.jsonl") for n in names)
    assert (await adapter.query(Query())).events == events
    await em.close()


async def test_start_truncates_a_torn_tail(root, caplog, make_event):
    em = await started(root)
    good = make_event()
    await em.emit([good])
    await em.close()
    active = root / "fab1" / "2026-11-28" / "events.jsonl"
    with active.open("ab") as f:
        f.write(b'{"schema_version": 1, "event_id": "trunc')  # a crash mid-write ...
    (root / ".writer.lock").write_text("dirty\n")  # ... leaves the writer's mark as it was
    caplog.set_level(logging.WARNING)
    em = await started(root)
    assert "dropped a torn last line of 40 bytes" in caplog.text
    assert active.read_bytes() == encode_ndjson([good])
    later = make_event()
    await em.emit([later])
    assert read_all(active.parent) == [good, later]
    await em.close()


async def test_start_after_a_clean_close_does_not_walk_the_partitions(root, make_event):
    em = await started(root)
    await em.emit([make_event()])
    assert (root / ".writer.lock").read_text() == "dirty\n"  # while writing
    await em.close()
    assert (root / ".writer.lock").read_text() == "clean\n"
    # Planted after the clean close: a crash cannot leave this, and recovery would remove it.
    leftover = root / "fab1" / "2026-11-28" / "events.20261128T100000000000Z.jsonl.gz.tmp"
    leftover.write_bytes(b"planted")
    em = await started(root)
    assert leftover.exists()  # not walked
    assert (root / ".writer.lock").read_text() == "dirty\n"
    await em.close()


async def test_start_truncates_a_file_without_any_newline(root):
    active = root / "fab1" / "2026-11-28" / "events.jsonl"
    active.parent.mkdir(parents=True)
    active.write_bytes(b"x" * 100_000)  # longer than the backwards scan's block
    em = await started(root)
    assert active.read_bytes() == b""
    await em.close()


async def test_start_cleans_up_after_an_interrupted_rotation(root, make_event):
    pdir = root / "fab1" / "2026-11-28"
    pdir.mkdir(parents=True)
    a, b, c = make_event(), make_event(), make_event()
    # crashed while gzipping: a .tmp next to its complete plain source
    (pdir / "events.20261128T100000000000Z.jsonl").write_bytes(encode_ndjson([a]))
    (pdir / "events.20261128T100000000000Z.jsonl.gz.tmp").write_bytes(b"\x1f\x8b half")
    # crashed after renaming the gz into place, before unlinking the plain file
    (pdir / "events.20261128T110000000000Z.jsonl").write_bytes(encode_ndjson([b]))
    (pdir / "events.20261128T110000000000Z.jsonl.gz").write_bytes(gzip.compress(encode_ndjson([b])))
    (pdir / "events.jsonl").write_bytes(encode_ndjson([c]))
    em = await started(root)
    assert sorted(p.name for p in pdir.iterdir()) == [
        "events.20261128T100000000000Z.jsonl.gz",
        "events.20261128T110000000000Z.jsonl.gz",
        "events.jsonl",
    ]
    assert read_all(pdir) == [a, b, c]
    await em.close()


async def test_concurrent_emits_do_not_interleave(emitter, adapter, make_event):
    batches = [[make_event(entity_id=f"e{i}", metadata={"pad": "x" * 5000})] for i in range(20)]
    await asyncio.gather(*(emitter.emit(batch) for batch in batches))
    result = await adapter.query(Query())
    assert len(result.events) == 20


async def test_root_that_is_a_file_gives_retryable_errors(tmp_path, make_event):
    root = tmp_path / "events"
    root.write_text("not a directory")
    em = FilesystemEmitter("fs", EmitterSettings(root=root))
    with pytest.raises(RetryableError, match=r"cannot prepare .*events"):
        await em.start()
    with pytest.raises(RetryableError, match=r"fab1: Not a directory"):
        await em.emit([make_event()])
    health = await em.health()
    assert not health.ok
    assert "not a writable directory" in health.detail
    await em.close()


async def test_missing_root_is_not_recreated_by_emit(tmp_path, make_event):
    # If root is an unmounted disk's mount point, writing a fresh tree there would hide data.
    em = await started(tmp_path / "events")
    shutil.rmtree(tmp_path / "events")
    with pytest.raises(RetryableError, match="No such file or directory"):
        await em.emit([make_event()])
    assert not (await em.health()).ok
    await em.close()


async def test_disk_full_is_retryable_and_leaves_no_partial_line(
    emitter, root, adapter, make_event
):
    first = make_event()
    await emitter.emit([first])
    await emitter.close()
    active = root / "fab1" / "2026-11-28" / "events.jsonl"
    saved = active.read_bytes()
    active.unlink()
    active.symlink_to("/dev/full")  # every write fails with ENOSPC
    with pytest.raises(RetryableError, match=r"events\.jsonl: No space left on device"):
        await emitter.emit([make_event()])
    active.unlink()
    active.write_bytes(saved)
    retried = make_event()
    await emitter.emit([retried])  # a fresh handle: appends after the last complete line
    assert (await adapter.query(Query())).events == [first, retried]


async def test_a_site_dir_linking_outside_root_is_refused(emitter, root, tmp_path, make_event):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "evil").symlink_to(outside)
    batch = [make_event(site_id="fab1"), make_event(site_id="evil")]
    with pytest.raises(PermanentError, match="site_id 'evil' would write outside root") as info:
        await emitter.emit(batch)
    assert info.value.event_ids is None  # refused whole: nothing of the batch was written
    assert not (root / "fab1").exists()
    assert list(outside.iterdir()) == []


async def test_health(emitter, root):
    assert (await emitter.health()).ok
    await emitter.close()
    shutil.rmtree(root)
    health = await emitter.health()
    assert not health.ok
    assert health.detail == f"root {root} is missing or not a writable directory"


async def test_close_closes_every_file(root, make_event):
    em = await started(root)
    await em.emit([make_event(site_id=f"fab{i}") for i in range(3)])
    handles = list(em._open.values())
    assert len(handles) == 3
    await em.close()
    assert all(h.file.closed for h in handles)
    assert em._open == {}


async def test_open_files_are_capped(emitter, adapter, make_event):
    events = [make_event(site_id=f"site{i}") for i in range(MAX_OPEN_FILES + 8)]
    for event in events:
        await emitter.emit([event])
    assert len(emitter._open) == MAX_OPEN_FILES
    await emitter.emit(events[:3])  # reopens partitions whose handles were closed
    assert (await adapter.query(Query(limit=1000))).events == events


async def test_empty_batch_is_a_no_op(emitter, root):
    await emitter.emit([])
    assert [p.name for p in root.iterdir()] == [".writer.lock"]


async def test_a_second_writer_on_the_same_root_is_refused(tmp_path):
    first = FilesystemEmitter("a", EmitterSettings(root=tmp_path / "fs"))
    second = FilesystemEmitter("b", EmitterSettings(root=tmp_path / "fs"))
    await first.start()
    try:
        with pytest.raises(RetryableError, match="in use by another filesystem emitter"):
            await second.start()
    finally:
        await first.close()
    await second.start()  # the lock is released on close
    await second.close()


async def test_jsonl_writes_the_spooled_bytes_without_decoding_them(emitter, root, make_event, t0):
    """From the sidecar a batch is an EventBatch of the bytes it received: they are written as
    they are, split by site and day, and no Event is built for that."""
    from wafermon import EventBatch, encode_event

    events = [
        make_event(site_id="fab1", time=t0),
        make_event(site_id="fab2", time=t0 + timedelta(days=1)),
        make_event(site_id="fab1", time=t0 + timedelta(seconds=1)),
    ]
    # As received: spacing the encoder would not write, which must survive byte for byte.
    lines = [encode_event(e).replace(b'","', b'", "', 1) for e in events]
    batch = EventBatch.from_ndjson(b"".join(line + b"\n" for line in lines))
    await emitter.emit(batch)
    assert not batch.decoded
    fab1 = (root / "fab1/2026-11-28/events.jsonl").read_bytes()
    fab2 = (root / "fab2/2026-11-29/events.jsonl").read_bytes()
    assert fab1 == lines[0] + b"\n" + lines[2] + b"\n"
    assert fab2 == lines[1] + b"\n"
    assert decode_batch(fab1 + fab2).events == [events[0], events[2], events[1]]
