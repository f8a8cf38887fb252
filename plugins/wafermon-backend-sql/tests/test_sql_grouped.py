"""SQLite: batches that wait for the one writer share a transaction (store._GroupedWrites),
and each still gets its own answer; a batch that cannot be written fails alone."""

from __future__ import annotations

import asyncio

import pytest

from wafermon import PermanentError, Query, Secret
from wafermon_backend_sql import Settings, SqlStore


@pytest.fixture
async def sqlite_store(tmp_path):
    store = SqlStore("managed", Settings(url=Secret(f"sqlite+aiosqlite:///{tmp_path}/w.db")))
    await store.start()
    yield store
    await store.close()


async def stored_ids(store: SqlStore) -> set[str]:
    return {str(e.event_id) for e in (await store.query(Query(limit=10_000))).events}


async def test_waiting_batches_share_a_commit_and_each_gets_its_own_answer(
    sqlite_store, make_event
):
    batches = [[make_event(entity_id=f"j{k}") for _ in range(50)] for k in range(6)]
    shared = make_event(entity_id="shared")
    batches[2].append(shared)
    batches[4].append(shared)  # arrives after batch 2's copy: a duplicate of it

    results = await asyncio.gather(*(sqlite_store.ingest(batch) for batch in batches))

    assert results[2] == [True] * 51
    assert results[4] == [True] * 50 + [False]
    assert all(results[k] == [True] * 50 for k in (0, 1, 3, 5))
    stats = sqlite_store.stats()
    assert stats["write_batches"] == 6
    assert stats["write_commits"] < 6
    assert len(await stored_ids(sqlite_store)) == 301
    for k in range(6):
        assert (await sqlite_store.job_detail(f"j{k}")).job.event_count == 50
    assert (await sqlite_store.job_detail("shared")).job.event_count == 1


async def test_a_batch_that_cannot_be_written_fails_alone(sqlite_store, make_event, monkeypatch):
    good_before = [make_event(entity_id="a") for _ in range(10)]
    poison = [make_event(entity_id="p") for _ in range(10)]
    good_after = [make_event(entity_id="b") for _ in range(10)]
    bad_ids = {str(e.event_id) for e in poison}
    dialect = sqlite_store.dialect
    insert_events = dialect.insert_events

    async def refusing(conn, records, prepared):
        if any(str(r[0]) in bad_ids for r in records):
            raise PermanentError("this batch cannot be written")
        return await insert_events(conn, records, prepared)

    monkeypatch.setattr(dialect, "insert_events", refusing)
    outcomes = await asyncio.gather(
        sqlite_store.ingest(good_before),
        sqlite_store.ingest(poison),
        sqlite_store.ingest(good_after),
        return_exceptions=True,
    )

    assert outcomes[0] == [True] * 10
    assert isinstance(outcomes[1], PermanentError)
    assert outcomes[2] == [True] * 10
    assert await stored_ids(sqlite_store) == {str(e.event_id) for e in good_before + good_after}
    assert await sqlite_store.job_detail("p") is None


async def test_a_batch_alone_that_fails_is_not_tried_twice(sqlite_store, make_event, monkeypatch):
    """Written again alone, it would fail again: a database that is down would cost each
    batch its timeout twice."""
    tries = []

    async def refusing(conn, records, prepared):
        tries.append(len(records))
        raise PermanentError("this batch cannot be written")

    monkeypatch.setattr(sqlite_store.dialect, "insert_events", refusing)
    with pytest.raises(PermanentError):
        await sqlite_store.ingest([make_event()])
    assert tries == [1]
