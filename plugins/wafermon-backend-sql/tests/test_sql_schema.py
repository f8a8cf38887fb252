"""Schema migrations, retention and (PostgreSQL) daily partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from wafermon import PermanentError, Query, Secret
from wafermon.store import fold
from wafermon_backend_sql import dialects
from wafermon_backend_sql.dialects import dialect_for, writing
from wafermon_backend_sql.schema import LATEST, apps, entities, event_ids, events, migrate
from wafermon_backend_sql.store import engine_url, entity_row, event_row

NOW = datetime.now(UTC)


async def _scalar(store, sql: str):
    async with store.dialect.engine.connect() as conn:
        return (await conn.execute(sa.text(sql))).scalar()


async def _partitions(store) -> list[str]:
    async with store.dialect.engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass ORDER BY 1"
            )
        )
        return list(rows.scalars())


def _day_name(moment: datetime) -> str:
    return f"events_p{moment:%Y%m%d}"


async def test_upgrade_from_version_1_keeps_the_data(db_url, backend, make_store, make_event):
    """A database at version 1 (no apps table, no filter indexes) with data, then start()."""
    url = engine_url(Secret(db_url))
    if backend == "sqlite":
        Path(url.database).parent.mkdir(parents=True)
    engine = create_async_engine(url)
    dialect = dialect_for(engine)
    old = [
        make_event(entity_id="old1", app_version="1.0"),
        make_event(entity_id="old1", kind="finished", app_version="1.0"),
        make_event(entity_type="subjob", entity_id="old1/w", parent_id="old1"),
    ]
    async with writing(dialect) as conn:
        assert await conn.run_sync(migrate, 1) == [1]
        await conn.execute(events.insert(), [event_row(e, NOW) for e in old])
        if backend == "postgresql":  # no partitions yet: the rows sit in the default partition
            await conn.execute(
                event_ids.insert(), [{"event_id": e.event_id, "time": e.time} for e in old]
            )
        await conn.execute(entities.insert(), [entity_row(s) for s in fold(old).values()])
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    await engine.dispose()
    assert "apps" not in tables

    store = await make_store()
    assert await _scalar(store, "SELECT count(*) FROM wafermon_schema_migrations") == LATEST == 2
    detail = await store.job_detail("old1")
    assert detail.job == fold(old)["old1"]
    assert detail.subjobs == [fold(old)["old1/w"]]
    assert detail.events == old[:2]
    async with store.dialect.engine.connect() as conn:  # v2 backfilled apps from entities
        rows = (await conn.execute(sa.select(apps.c.name, apps.c.version))).all()
    assert sorted(rows) == [("etch", ""), ("etch", "1.0")]
    assert await store.ingest([old[0], make_event(entity_id="old1")]) == [False, True]
    assert (await store.job_detail("old1")).job.event_count == 3
    if backend == "postgresql":  # start() made today's partitions and moved the rows there
        assert await _scalar(store, "SELECT count(*) FROM events_default") == 0


async def test_starting_again_is_a_no_op(make_store, make_event):
    first = await make_store()
    await first.ingest([make_event(entity_id="keep")])
    second = await make_store()
    assert await _scalar(second, "SELECT count(*) FROM wafermon_schema_migrations") == 2
    assert (await second.job_detail("keep")).job.event_count == 1


async def test_a_newer_schema_is_refused(make_store):
    store = await make_store()
    async with writing(store.dialect) as conn:
        await conn.execute(
            sa.text("INSERT INTO wafermon_schema_migrations VALUES (99, 'x', :t)"), {"t": NOW}
        )
    with pytest.raises(PermanentError, match="version 99"):
        await make_store()


async def test_retention_removes_old_events_and_entities(backend, make_store, make_event):
    store = await make_store(hot_retention=72 * 3600, entity_retention=5 * 86400)
    ancient = NOW - timedelta(days=10)
    if backend == "postgresql":  # a partition for that day, as if made when it was today
        await store.dialect.ensure_partitions([ancient.date()])
    very_old = [
        make_event(entity_id="ancient", time=ancient + timedelta(seconds=i)) for i in range(5)
    ]
    old = [make_event(entity_id="old", time=NOW - timedelta(days=4, seconds=i)) for i in range(3)]
    recent = [make_event(entity_id="recent", time=NOW - timedelta(hours=1))]
    await store.ingest(very_old + old + recent)
    assert await store.enforce_retention() == 8
    assert (await store.query(Query())).events == recent
    assert await store.job_detail("ancient") is None  # past entity_retention
    assert (await store.job_detail("old")).events == []  # its row stays for the job list
    assert await store.enforce_retention() == 0
    if backend == "postgresql":
        partitions = await _partitions(store)
        assert _day_name(ancient) not in partitions
        assert _day_name(NOW) in partitions
        assert _day_name(NOW + timedelta(days=2)) in partitions
        assert await _scalar(store, "SELECT count(*) FROM event_ids") == 1


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL drops whole days instead
async def test_sqlite_retention_is_exact_and_chunked(make_store, make_event, monkeypatch):
    """SQLite deletes by the exact cutoff, RETENTION_CHUNK rows per transaction."""
    monkeypatch.setattr(dialects, "RETENTION_CHUNK", 3)
    store = await make_store(hot_retention=3600)
    old = [make_event(entity_id="o", time=NOW - timedelta(hours=2, seconds=i)) for i in range(10)]
    kept = [make_event(entity_id="k", time=NOW - timedelta(minutes=30))]
    await store.ingest(old + kept)
    assert await store.enforce_retention() == 10
    assert (await store.query(Query())).events == kept


# -- PostgreSQL partitions ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_partitions_ahead_on_demand_and_default(store, make_event):
    today = NOW.date()
    partitions = await _partitions(store)
    for offset in (-1, 0, 1, 2):
        assert _day_name(NOW + timedelta(days=offset)) in partitions
    assert "events_default" in partitions

    soon = make_event(entity_id="soon", time=NOW + timedelta(days=5))
    far = make_event(entity_id="far", time=NOW + timedelta(days=30))
    await store.ingest([soon, far])
    partitions = await _partitions(store)
    assert _day_name(soon.time) in partitions  # made on demand
    assert _day_name(far.time) not in partitions  # beyond the window: default partition
    assert await _scalar(store, "SELECT count(*) FROM events_default") == 1

    # When its day's partition is made, rows already in the default partition move into it.
    await store.dialect.ensure_partitions([far.time.date()])
    assert await _scalar(store, "SELECT count(*) FROM events_default") == 0
    assert await _scalar(store, f"SELECT count(*) FROM {_day_name(far.time)}") == 1
    assert (await store.query(Query(entity_id="far"))).events == [far]
    assert await store.ingest([far]) == [False]
    assert today in store.dialect.partitions


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize(
    "where",
    [
        "",
        "AND status = 'running'",
        "AND site_id = 'fab1'",
        "AND app = 'etch'",
        "AND business_key = 'L7'",
        "AND start_time >= now() - interval '1 hour'",
    ],
)
async def test_entity_listings_use_an_index(store, make_event, where):
    """No filter of GET /v1/jobs makes PostgreSQL read the whole table."""
    await store.ingest(
        [make_event(entity_id=f"ix{i}", business_key=f"L{i % 20}") for i in range(500)]
    )
    async with store.dialect.engine.begin() as conn:
        await conn.execute(sa.text("ANALYZE entities"))
    async with store.dialect.engine.connect() as conn:
        plan = await conn.execute(
            sa.text(
                f"EXPLAIN SELECT * FROM entities WHERE entity_type = 'job' {where} "
                "ORDER BY start_time DESC, entity_id DESC LIMIT 101"
            )
        )
        text = "\n".join(plan.scalars())
    assert "Index Scan" in text, text
    assert "Seq Scan" not in text, text
