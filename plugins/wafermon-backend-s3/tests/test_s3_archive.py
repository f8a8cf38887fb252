"""The archiver on SQLite and PostgreSQL with the real SeaweedFS: verify before delete,
kill -9 at every step then a rerun, idempotence, and the manifests."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import NOW, spread

from wafermon import Query
from wafermon_backend_s3 import Archiver, ArchiveSettings, layout, reader
from wafermon_backend_s3.archive import VerifyError

HERE = Path(__file__).parent
#: Five days at midday NOW: with a 2-day hot window the first three are archived.
DAYS = [NOW - timedelta(days=d) for d in (5, 4, 3, 2, 1)]
SETTINGS = {"hot_window": 2 * 86400, "chunk_rows": 40, "compact": False}


def five_days():
    return [e for day in DAYS for e in spread(day, 60, timedelta(minutes=3))]


async def hot_ids(store) -> list[UUID]:
    ids, query = [], Query(limit=10_000)
    while True:
        page = await store.query(query)
        ids += [e.event_id for e in page.events]
        if page.next_cursor is None:
            return ids
        query = Query(limit=10_000, cursor=page.next_cursor)


async def cold_ids(bucket) -> list[UUID]:
    """Event ids of every committed archive object, with repeats if any object repeats one."""
    ids = []
    for obj in reader.committed(await bucket.list_objects("wafermon/site=")):
        table = pq.read_table(pa.BufferReader(await bucket.get(obj.key)), columns=["event_id"])
        ids += [UUID(i) for i in table.column("event_id").to_pylist()]
    return ids


async def assert_exactly_once(store, bucket, written):
    hot, cold = await hot_ids(store), await cold_ids(bucket)
    assert len(cold) == len(set(cold)), "an event is in two archive objects"
    assert not set(hot) & set(cold), "an event is both hot and archived"
    assert sorted(hot + cold) == sorted(e.event_id for e in written)
    old = {e.event_id for e in written if e.time < DAYS[3].replace(hour=0)}
    assert set(cold) == old  # exactly the whole days older than the hot window


async def test_old_days_move_to_verified_parquet_and_a_second_run_does_nothing(store, bucket):
    written = five_days()
    await store.ingest(written)
    report = await Archiver(store, bucket, "wafermon", ArchiveSettings(**SETTINGS), now=NOW).run()
    assert report.archived == 180
    assert report.objects == 6  # 3 days x 60 events in chunks of 40 rows (the chunks cut days)
    await assert_exactly_once(store, bucket, written)

    keys = [o.key for o in await bucket.list_objects("wafermon/")]
    manifests = [k for k in keys if k.endswith(layout.MANIFEST)]
    assert len(manifests) == 6
    assert not [k for k in keys if "/_wafermon/" in k]  # no markers left
    manifest = orjson.loads(await bucket.get(manifests[0]))
    data = await bucket.get(manifest["object"])
    assert manifest["object_bytes"] == len(data)
    assert manifest["rows"] == pq.read_metadata(pa.BufferReader(data)).num_rows
    assert manifest["min_time"] <= manifest["max_time"]
    assert manifest["object"].startswith(f"wafermon/site=fab1/date={manifest['date']}/archive-")

    again = await Archiver(store, bucket, "wafermon", ArchiveSettings(**SETTINGS), now=NOW).run()
    assert (again.archived, again.objects, again.recovered) == (0, 0, 0)
    assert sorted(keys) == sorted(o.key for o in await bucket.list_objects("wafermon/"))


async def test_nothing_leaves_the_store_when_the_read_back_differs(store, bucket):
    written = five_days()
    await store.ingest(written)

    async def tamper(step: str) -> None:
        if step == "uploaded":  # the object changes between upload and read-back
            (obj,) = [
                o for o in await bucket.list_objects("wafermon/") if o.key.endswith(".parquet")
            ]
            await bucket.put(
                obj.key, b"garbage", "application/octet-stream", multipart_above=1 << 30
            )

    archiver = Archiver(
        store, bucket, "wafermon", ArchiveSettings(**SETTINGS), now=NOW, on_step=tamper
    )
    with pytest.raises(VerifyError, match="sha256"):
        await archiver.run()
    assert sorted(await hot_ids(store)) == sorted(e.event_id for e in written)
    assert not reader.committed(await bucket.list_objects("wafermon/"))
    # The next pass (nothing tampering) archives normally.
    await Archiver(store, bucket, "wafermon", ArchiveSettings(**SETTINGS), now=NOW).run()
    await assert_exactly_once(store, bucket, written)


STEPS = [
    ("uploaded", 2),  # object stored, not verified, no marker
    ("pending", 3),  # marker written, manifest not
    ("manifest", 2),  # committed, nothing deleted from the store yet
    ("deleting", 1),  # mid-delete (chunks of 1000 rows; here the one chunk is done)
]


# Every step on SQLite; on PostgreSQL mid-delete, whose recovery deletes from the store (the
# archive logic is the same; each case costs a process start, slow on a loaded 2-core machine).
@pytest.mark.parametrize(
    ("backend", "step", "occurrence"),
    [("sqlite", *s) for s in STEPS] + [("postgresql", *STEPS[3])],
    indirect=["backend"],
)
async def test_kill_9_at_each_step_then_a_rerun_leaves_every_event_exactly_once(
    store, bucket, db_url, s3_config, bucket_name, step, occurrence
):
    written = five_days()
    await store.ingest(written)
    spec = {
        "db_url": db_url,
        "s3": {**s3_config, "bucket": bucket_name},
        "archive": SETTINGS,
        "now": NOW.isoformat(),
        "step": step,
        "occurrence": occurrence,
    }
    child = subprocess.run(
        [sys.executable, str(HERE / "archive_child.py"), orjson.dumps(spec).decode()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr  # died by SIGKILL at the step
    report = await Archiver(store, bucket, "wafermon", ArchiveSettings(**SETTINGS), now=NOW).run()
    assert report.recovered == (0 if step == "uploaded" else 1)
    await assert_exactly_once(store, bucket, written)
    assert not [o for o in await bucket.list_objects("wafermon/_wafermon/")]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_archived_days_past_retention_are_deleted_manifests_first(store, bucket):
    written = five_days()
    await store.ingest(written)
    settings = ArchiveSettings(**SETTINGS, retention=4.5 * 86400)  # DAYS[0] (5 days ago) expires
    report = await Archiver(store, bucket, "wafermon", settings, now=NOW).run()
    assert report.expired_days == 1
    cold = await cold_ids(bucket)
    assert set(cold) == {
        e.event_id for e in written if DAYS[1].date() <= e.time.date() < DAYS[3].date()
    }
    assert not await bucket.list_objects(layout.date_prefix("wafermon", "fab1", DAYS[0].date()))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_object_damaged_after_its_manifest_is_quarantined_not_a_stall(store, bucket):
    written = five_days()
    await store.ingest(written)

    def crash(step: str) -> None:
        if step == "manifest":
            raise ConnectionError("simulated crash after the manifest")

    with pytest.raises(ConnectionError):
        await Archiver(
            store, bucket, "wafermon", ArchiveSettings(**SETTINGS), now=NOW, on_step=crash
        ).run()
    (committed,) = reader.committed(await bucket.list_objects("wafermon/site="))
    await bucket.put(committed.key, b"bit rot", "application/octet-stream", multipart_above=1 << 30)

    report = await Archiver(store, bucket, "wafermon", ArchiveSettings(**SETTINGS), now=NOW).run()
    assert report.quarantined == [committed.key]
    await assert_exactly_once(store, bucket, written)  # its rows were still hot: archived anew
    assert await bucket.list_objects(layout.quarantine_key("wafermon", committed.key))
