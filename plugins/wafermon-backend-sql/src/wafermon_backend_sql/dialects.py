"""What differs between SQLite and PostgreSQL, behind one small interface.

The store's logic (dedupe, fold, merge upsert, queries) is the same on both engines; this module
holds only the parts that are not: engine set-up, how new events are inserted and told apart
from duplicates, partitions, and how retention removes old rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wafermon import Event, encode_event
from wafermon.wire import WireEvent

from .schema import entities, event_ids, events

EVENT_COLUMNS = [c.name for c in events.c]
#: An ``events`` row as a tuple in ``EVENT_COLUMNS`` order, its event_id as canonical text.
Record = tuple[Any, ...]


def event_record(event: Event, received_at: datetime, body: bytes | None = None) -> Record:
    """The ``events`` row of an event.

    ``body`` is the JSON text the event was decoded from, when known: stored as it is (it
    decodes to this very event), which saves encoding the event again.
    """
    e = event.entity
    return (
        str(event.event_id),
        event.time,
        str(event.kind),
        event.site_id,
        event.app.name,
        str(e.type),
        e.id,
        e.parent_id,
        e.business_key,
        e.sub_key,
        received_at,
        (encode_event(event) if body is None else body).decode(),
    )


def wire_record(event: WireEvent, time: datetime, line: bytes, received_at: datetime) -> Record:
    """The ``events`` row of a wire event (``time``: its time, parsed), without an Event."""
    e = event.entity
    return (
        event.event_id,
        time,
        event.kind,
        event.site_id,
        event.app.name,
        e.type,
        e.id,
        e.parent_id,
        e.business_key,
        e.sub_key,
        received_at,
        line.decode(),
    )


RETENTION_CHUNK = 10_000  # rows per DELETE: short transactions, bounded WAL and lock time


class Dialect:
    """Engine-specific behaviour. One instance per store."""

    name: str
    insert: Any  # the dialect's insert() with on_conflict_do_update / .excluded

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def least(self, *args: Any) -> Any:
        raise NotImplementedError

    def greatest(self, *args: Any) -> Any:
        raise NotImplementedError

    def write_lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Held around every write transaction of this process."""
        return contextlib.nullcontext()

    async def after_migrate(self) -> None:
        """Runs at start() once the schema is current."""

    async def before_ingest(self, times: Iterable[datetime], cutoff: datetime) -> None:
        """Runs before the ingest transaction with the times of a batch's events."""

    def prepare_events(self, records: Sequence[Record], times: Sequence[str] | None) -> Any:
        """What ``insert_events`` sends of ``records``, made before the transaction.

        ``times``: each record's time as RFC 3339 text in UTC, when the caller has it."""
        return records

    async def insert_events(
        self, conn: AsyncConnection, records: Sequence[Record], prepared: Any
    ) -> set[str]:
        """Insert the rows whose event_id is not stored yet; return those ids (as text).

        ``records`` hold distinct event_ids; ``prepared`` is ``prepare_events(records)``.
        """
        raise NotImplementedError

    async def enforce_retention(self, cutoff: datetime) -> int:
        """Delete events older than ``cutoff`` in bounded steps; return how many."""
        raise NotImplementedError

    async def delete_chunked(self, table: sa.Table, key: sa.Column, where: Any) -> int:
        """DELETE matching rows RETENTION_CHUNK at a time, each chunk its own transaction."""
        removed = 0
        while True:
            async with writing(self) as conn:
                ids = sa.select(key).where(where).limit(RETENTION_CHUNK).scalar_subquery()
                result = await conn.execute(sa.delete(table).where(key.in_(ids)))
            removed += result.rowcount
            if result.rowcount < RETENTION_CHUNK:
                return removed


# -- SQLite ---------------------------------------------------------------------------------------


class SqliteDialect(Dialect):
    """Embedded default: one file, WAL, one writer at a time.

    PRAGMAs, per connection: ``journal_mode=WAL`` lets readers (queries, dashboards) run while a
    batch is written; ``synchronous=FULL`` because an acknowledged batch must survive power
    loss too (in WAL mode NORMAL may lose the last commits on power loss, and a commit per batch
    makes the extra fsync cheap); ``busy_timeout`` makes a second process (a sidecar and a
    gateway on one file) wait instead of failing; ``foreign_keys`` for any future references.
    ``wal_autocheckpoint=10000`` (pages, about 40 MiB of WAL; SQLite's default is 1000): a
    checkpoint copies each changed page once however often it changed since the last one, and
    the index pages of a busy events table change in every batch, so checkpointing ten times
    less often cut the write path's time by about a third in the gateway bench; every commit
    still fsyncs the WAL. ``cache_size=-16384`` (16 MiB per connection instead of 2): the
    event_id gate and the events indexes are B-trees over random ids, whose pages otherwise
    fall out of the cache between batches once the store holds a few hundred thousand events.

    Transactions: the driver's implicit transaction handling is switched off and the store
    emits BEGIN itself (SQLAlchemy's documented recipe), so migrations are atomic; writes use
    BEGIN IMMEDIATE, taking the write lock up front, so a transaction never has to upgrade a
    read lock and fail with SQLITE_BUSY. An asyncio lock keeps this process's writers in line
    without spinning on the busy handler.
    """

    name = "sqlite"
    insert = staticmethod(sqlite.insert)

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._lock = asyncio.Lock()
        sync_engine = engine.sync_engine

        @sa_event.listens_for(sync_engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "busy_timeout=30000",
                "foreign_keys=ON",
                "wal_autocheckpoint=10000",
                "cache_size=-16384",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

        @sa_event.listens_for(sync_engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            write = conn.get_execution_options().get("wafermon_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    def least(self, *args: Any) -> Any:
        return sa.func.min(*args)  # min() with several arguments is SQLite's scalar LEAST

    def greatest(self, *args: Any) -> Any:
        return sa.func.max(*args)

    def write_lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._lock

    def prepare_events(
        self, records: Sequence[Record], times: Sequence[str] | None
    ) -> list[tuple[Any, ...]]:
        """Every record as the row ``insert_events`` binds (event_id as hex, times as text)."""
        received: dict[datetime, str] = {}  # a batch shares one received_at: one text
        texts = (
            map(sqlite_time, (r[1] for r in records)) if times is None else map(_wire_time, times)
        )
        return [
            (
                r[0].replace("-", ""),
                text,
                *r[2:10],
                received.get(r[10]) or _text(received, r[10]),
                r[11],
            )
            for r, text in zip(records, texts, strict=True)
        ]

    async def insert_events(
        self, conn: AsyncConnection, records: Sequence[Record], prepared: Any
    ) -> set[str]:
        """Look up which ids are stored already (one call), then one executemany of the new rows.

        On the driver's connection, in the transaction SQLAlchemy began (BEGIN IMMEDIATE: no
        other writer can add an id between the look-up and the insert). sqlite3's executemany
        of one prepared statement binds each row in C; SQLAlchemy's multi-row INSERT ...
        RETURNING rendered and converted every value in Python, several times the cost. The
        values are written as SQLAlchemy's types write them (``Uuid``: 32 hex digits;
        ``UTCDateTime``: ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC), so its reads see the same.
        """
        raw = (await conn.get_raw_connection()).driver_connection
        hexes = [row[0] for row in prepared]
        stored: set[str] = set()
        for start in range(0, len(hexes), _SQLITE_IN):
            some = hexes[start : start + _SQLITE_IN]
            found = await raw.execute_fetchall(_SQLITE_STORED % ",".join("?" * len(some)), some)
            stored.update(row[0] for row in found)
        if not stored:
            await raw.executemany(_SQLITE_INSERT, prepared)
            return {r[0] for r in records}
        await raw.executemany(_SQLITE_INSERT, [row for row in prepared if row[0] not in stored])
        return {r[0] for h, r in zip(hexes, records, strict=True) if h not in stored}

    async def enforce_retention(self, cutoff: datetime) -> int:
        rowid = sa.literal_column("rowid")
        return await self.delete_chunked(events, rowid, events.c.time < cutoff)


# Ids per look-up, under SQLite's limit of bound parameters (32766 since 3.32, 999 before):
# one look-up per batch, each a call into aiosqlite's thread, made while the write lock is
# held and the event loop may be busy with other requests (a GIL hand-over each way).
_SQLITE_IN = 30_000 if sqlite3.sqlite_version_info >= (3, 32) else 900
_SQLITE_STORED = "SELECT event_id FROM events WHERE event_id IN (%s)"
_SQLITE_INSERT = "INSERT INTO events ({}) VALUES ({})".format(
    ", ".join(EVENT_COLUMNS), ", ".join("?" * len(EVENT_COLUMNS))
)


def sqlite_time(moment: datetime) -> str:
    """UTCDateTime's text on SQLite: naive UTC, always six fraction digits."""
    if moment.tzinfo is not UTC:  # times are UTC as a rule: convert only the others
        moment = moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def _wire_time(text: str) -> str:
    """``sqlite_time`` of a wire time, from its text (``YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z``, the
    schema's only form): a third of the cost of formatting the parsed time."""
    return f"{text[:10]} {text[11:19]}.{text[20:-1]:0<6}"


def _text(texts: dict[datetime, str], moment: datetime) -> str:
    texts[moment] = text = sqlite_time(moment)
    return text


# -- PostgreSQL -----------------------------------------------------------------------------------

_PARTITION = re.compile(r"events_p(\d{8})")
# The idempotency gate: ids in event_id order, so concurrent batches lock in one order. Ids and
# times travel as two comma-separated texts: asyncpg encodes array parameters element by
# element with a Python-level check on each, several times the cost of one joined string. The
# new ids come back the same way, one text (not a result row per event for the driver and
# SQLAlchemy to build).
_GATE = (
    "WITH new AS (INSERT INTO event_ids (event_id, time)"
    " SELECT b.id::uuid, b.at::timestamptz"
    " FROM unnest(string_to_array($1, ','), string_to_array($2, ',')) AS b(id, at)"
    " ORDER BY 1 ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
    " SELECT string_agg(event_id::text, ',') FROM new"
)
_PARTITION_LOCK = 0x7761_6665_7202
DAY = timedelta(days=1)
AHEAD = 2  # partitions made ahead: today-1 .. today+AHEAD
FUTURE_LIMIT = 7  # an event further in the future than this (days) goes to the default partition


def _day_start(day: date) -> str:
    """A timestamptz literal for the start of a UTC day (independent of the session TimeZone)."""
    return f"{day.isoformat()} 00:00:00+00"


def _floor_day(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time(), UTC)


class PostgresDialect(Dialect):
    """Production: daily range partitions, COPY-based ingest, retention by dropping partitions.

    Idempotency on a partitioned table: PostgreSQL requires every unique constraint of a
    partitioned table to contain the partition key, so ``UNIQUE (event_id)`` on ``events`` is
    impossible and ``UNIQUE (event_id, time)`` would let a duplicate with a different time in.
    The gate is therefore the small unpartitioned ``event_ids (event_id PRIMARY KEY, time)``
    table: one statement inserts the batch's ids there with ON CONFLICT DO NOTHING and only the
    rows it returns go on into ``events``. Concurrent batches carrying the same event serialise
    on that primary key (the second waits for the first to commit, then sees the conflict), so
    an event is stored and merged exactly once. Ids are inserted in event_id order so two
    batches never wait on each other in opposite orders (no deadlock).
    """

    name = "postgresql"
    insert = staticmethod(postgresql.insert)

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.partitions: set[date] = set()

    def least(self, *args: Any) -> Any:
        return sa.func.least(*args)

    def greatest(self, *args: Any) -> Any:
        return sa.func.greatest(*args)

    async def after_migrate(self) -> None:
        today = datetime.now(UTC).date()
        await self.ensure_partitions(today + DAY * n for n in range(-1, AHEAD + 1))

    async def before_ingest(self, times: Iterable[datetime], cutoff: datetime) -> None:
        # Partitions only inside the window retention would keep and a few days ahead: older
        # rows go to the default partition (retention deletes them), far-future ones too (moved
        # into their partition when it is made).
        first = cutoff.astimezone(UTC).date()
        last = datetime.now(UTC).date() + DAY * FUTURE_LIMIT
        days = {(t if t.tzinfo is UTC else t.astimezone(UTC)).date() for t in times}
        if missing := {d for d in days if first <= d <= last} - self.partitions:
            await self.ensure_partitions(missing)

    @staticmethod
    async def existing_partitions(conn: AsyncConnection) -> set[date]:
        names = await conn.scalars(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass"
            )
        )
        found = set()
        for name in names:
            if match := _PARTITION.fullmatch(name):
                found.add(datetime.strptime(match[1], "%Y%m%d").date())
        return found

    async def ensure_partitions(self, days: Iterable[date]) -> None:
        """Create daily partitions that do not exist yet, under an advisory lock.

        A day's rows may already sit in the default partition (they arrived before their
        partition existed): PostgreSQL refuses to create an overlapping partition then, so the
        partition is made as a plain table, those rows are moved into it and it is attached, in
        one transaction. The names and bounds are formatted from dates, never from input text.
        """
        async with self.engine.begin() as conn:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PARTITION_LOCK)))
            existing = await self.existing_partitions(conn)
            for day in sorted(set(days) - existing):
                name, lo, hi = f"events_p{day:%Y%m%d}", _day_start(day), _day_start(day + DAY)
                await conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS)")
                await conn.exec_driver_sql(
                    f"WITH moved AS (DELETE FROM events_default WHERE time >= '{lo}' "
                    f"AND time < '{hi}' RETURNING *) INSERT INTO {name} SELECT * FROM moved"
                )
                await conn.exec_driver_sql(
                    f"ALTER TABLE events ATTACH PARTITION {name} "
                    f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
                )
                existing.add(day)
        self.partitions = existing

    def prepare_events(
        self, records: Sequence[Record], times: Sequence[str] | None
    ) -> tuple[str, str]:
        """The gate's two texts: the ids and the times, comma-separated (the wire's own time
        texts when given: PostgreSQL reads RFC 3339 as it is)."""
        ids = ",".join([r[0] for r in records])
        return ids, ",".join(times if times is not None else [r[1].isoformat() for r in records])

    async def insert_events(
        self, conn: AsyncConnection, records: Sequence[Record], prepared: Any
    ) -> set[str]:
        """Gate the batch's ids, then COPY only the new events straight into ``events``.

        The gate is one statement over two text parameters (ids, times), so the batch costs
        two round trips: the gate, whose answer says which events are new, and one binary COPY
        of exactly those rows (COPY is the fastest way into PostgreSQL; a COPY into the
        partitioned table routes each row to its day's partition). Nothing is written twice
        and no staging table is needed. The gate statement goes through SQLAlchemy, which
        opens the transaction the COPY then runs in.
        """
        joined = (await conn.exec_driver_sql(_GATE, prepared)).scalar()
        new = set(joined.split(",")) if joined else set()
        if new:
            rows = records if len(new) == len(records) else [r for r in records if r[0] in new]
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)
        return new

    async def enforce_retention(self, cutoff: datetime) -> int:
        """Drop whole days older than the cutoff's day, then the matching default and gate rows.

        Everything before the start of the cutoff's UTC day goes, so up to one day more than
        the hot window is kept. Gate rows go only after their events: a failure in between
        leaves events that are still deduplicated, never events without their gate row.
        """
        boundary = _floor_day(cutoff)
        removed = 0
        async with self.engine.connect() as conn:
            days = await self.existing_partitions(conn)
        for day in sorted(d for d in days if d + DAY <= boundary.date()):
            async with self.engine.begin() as conn:
                await conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                name = f"events_p{day:%Y%m%d}"
                removed += (await conn.exec_driver_sql(f"SELECT count(*) FROM {name}")).scalar()
                await conn.exec_driver_sql(f"DROP TABLE {name}")
        self.partitions -= {d for d in days if d + DAY <= boundary.date()}
        default = sa.table("events_default", sa.column("time", events.c.time.type))
        removed += await self.delete_chunked(
            default, sa.literal_column("ctid"), default.c.time < boundary
        )
        await self.delete_chunked(event_ids, event_ids.c.event_id, event_ids.c.time < boundary)
        await self.after_migrate()  # keep partitions made ahead as days pass
        return removed


def dialect_for(engine: AsyncEngine) -> Dialect:
    return (SqliteDialect if engine.dialect.name == "sqlite" else PostgresDialect)(engine)


@contextlib.asynccontextmanager
async def writing(dialect: Dialect) -> AsyncIterator[AsyncConnection]:
    """A write transaction: the process's write lock, then BEGIN (IMMEDIATE on SQLite)."""
    async with dialect.write_lock(), dialect.engine.connect() as conn:
        await conn.execution_options(wafermon_write=True)
        async with conn.begin():
            yield conn


__all__ = ["Dialect", "dialect_for", "entities", "writing"]
