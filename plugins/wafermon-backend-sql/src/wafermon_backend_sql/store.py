"""SqlStore: the managed store on SQLite or PostgreSQL (SQLAlchemy async).

Ingest, in one transaction per batch: drop repeats inside the batch (first occurrence wins),
insert the events letting the database say which event_ids are new (the idempotency gate),
fold only the new events per entity with the core's ``fold``, and upsert each entity with an
``INSERT ... ON CONFLICT DO UPDATE`` whose SET clause is ``EntityState.merge`` written in SQL
(``merge_set``).

Why merge in SQL rather than SELECT ... FOR UPDATE + merge in Python: the upsert is atomic per
row, so two concurrent batches touching one entity cannot lose an update on PostgreSQL (the
second waits on the row lock and merges into the committed row), including when the row does
not exist yet (which FOR UPDATE cannot lock); and it costs one statement per chunk instead of a
read round trip. The merge is commutative, so folding the batch in Python first and merging
that partial state into the stored row gives exactly ``fold`` of all events. The stamps that
order the merge are stored as text whose bytewise order is the core's tuple order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import attrs
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from wafermon import (
    ErrorInfo,
    Event,
    Health,
    PermanentError,
    Query,
    QueryResult,
    RetryableError,
    Seconds,
    Secret,
    encode_cursor,
    pack_cursor,
    unpack_cursor,
)
from wafermon.config import config_dir
from wafermon.errors import FieldValueError
from wafermon.interfaces import STATUSES
from wafermon.store import (
    MERGE_GROUPS,
    EntityPage,
    EntityQuery,
    EntityState,
    JobDetail,
    ManagedStore,
    Stamp,
    fold,
)
from wafermon.wire import WireEvent, stored_event

from .dialects import (
    EVENT_COLUMNS,
    Dialect,
    Record,
    dialect_for,
    event_record,
    sqlite_time,
    wire_record,
    writing,
)
from .schema import SchemaTooNew, UTCDateTime, apps, entities, event_ids, events, migrate

log = logging.getLogger(__name__)
T = TypeVar("T")

# -- settings -------------------------------------------------------------------------------------

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def engine_url(url: Secret) -> sa.URL:
    """The SQLAlchemy URL: plain ``postgresql://`` and ``sqlite://`` get their async driver."""
    try:
        parsed = sa.make_url(url.reveal())
    except sa.exc.ArgumentError:
        raise FieldValueError("url", "not a database URL") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise FieldValueError(
            "url",
            f"unsupported scheme {parsed.drivername!r}: use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user@host/db",
        )
    if driver.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise FieldValueError("url", "SQLite needs a file path: sqlite+aiosqlite:///path/to.db")
    return parsed.set(drivername=driver)


def _valid_url(_inst: object, _attr: attrs.Attribute, value: Secret) -> None:
    engine_url(value)


def _as_secret(value: Secret | str) -> Secret:
    return _relative_to_config(value if isinstance(value, Secret) else Secret(value))


def _relative_to_config(url: Secret) -> Secret:
    """A relative SQLite file path resolved against the config file's folder, like every
    other relative path in a site config (``config_dir()``; unchanged outside a config)."""
    base = config_dir()
    if base is None:
        return url
    try:
        parsed = sa.make_url(url.reveal())
    except sa.exc.ArgumentError:
        return url  # the validator explains
    database = parsed.database
    if (
        not parsed.drivername.startswith("sqlite")
        or database in (None, "", ":memory:")
        or database.startswith("file:")
        or Path(database).is_absolute()
    ):
        return url
    return Secret(parsed.set(database=str(base / database)).render_as_string(hide_password=False))


def _at_least(low: float):
    def check(_inst: object, attribute: attrs.Attribute, value: float) -> None:
        if value < low:
            raise FieldValueError(attribute.name, f"must be at least {low}, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class Settings:
    """``config:`` of a ``type: sql`` backend or source.

    ``url`` is a SQLAlchemy URL (``sqlite+aiosqlite:///./data/wafermon.db`` or
    ``postgresql+asyncpg://user:pw@host/db``; plain ``postgresql://`` is rewritten to asyncpg).
    A relative SQLite path is relative to the config file's folder, like every relative path
    in a site config (``wafermon.config.config_dir``). ``entity_retention`` of 0
    keeps job and subjob rows forever.
    """

    url: Secret = attrs.field(converter=_as_secret, validator=_valid_url)
    hot_retention: Seconds = attrs.field(default=Seconds(72 * 3600), validator=_at_least(1))
    entity_retention: Seconds = attrs.field(default=Seconds(30 * 86400), validator=_at_least(0))
    pool_size: int = attrs.field(default=10, validator=_at_least(1))
    batch_chunk: int = attrs.field(default=5000, validator=_at_least(1))
    connect_timeout: Seconds = attrs.field(default=Seconds(10), validator=_at_least(0.1))


# -- rows <-> core objects ------------------------------------------------------------------------


def stamp_text(stamp: Stamp, times: dict[datetime, str] | None = None) -> str | None:
    """(rank, time, event_id) as text that sorts bytewise like the tuple.

    ``times``: texts of times made so far (a state's stamps mostly share one time)."""
    if stamp is None:
        return None
    rank, when, event_id = stamp
    text = None if times is None else times.get(when)
    if text is None:
        utc = when if when.tzinfo is UTC else when.astimezone(UTC)  # UTC as a rule
        text = utc.isoformat(timespec="microseconds")[:26]
        if times is not None:
            times[when] = text
    return f"{rank}|{text}|{event_id}"


def parse_stamp(text: str | None) -> Stamp:
    if text is None:
        return None
    rank, when, event_id = text.split("|")
    return int(rank), datetime.fromisoformat(when).replace(tzinfo=UTC), event_id


_STAMPS = ("identity_stamp", "metrics_stamp", "metadata_stamp", "progress_stamp", "error_stamp")


def event_row(event: Event, received_at: datetime) -> dict[str, Any]:
    row = dict(zip(EVENT_COLUMNS, event_record(event, received_at), strict=True))
    row["event_id"] = event.event_id  # a UUID for SQLAlchemy's Uuid type
    return row


class _Folded:
    """What ``fold`` reads of a wire event, read from it without building an ``Event``:
    its time parsed, its error (failed events only) an ``ErrorInfo``, its metadata the raw JSON
    when it has members for sure (``{"`` opens it), which is decoded only if it wins the fold.
    Event ids stay canonical text, which orders as the UUIDs do."""

    __slots__ = (
        "app",
        "entity",
        "error",
        "event_id",
        "kind",
        "metadata",
        "metrics",
        "site_id",
        "time",
    )

    def __init__(self, event: WireEvent, time: datetime) -> None:
        self.event_id = event.event_id
        self.kind = event.kind
        self.time = time
        self.site_id = event.site_id
        self.app = event.app
        self.entity = event.entity
        self.metrics = event.metrics
        raw = event.metadata
        if len(raw) == 2:
            self.metadata: Any = _NO_METADATA
        elif memoryview(raw)[1] == 0x22:  # '{"': an object with members (truthy as Raw is)
            self.metadata = raw
        else:  # spaces, maybe an empty object after all
            self.metadata = orjson.loads(memoryview(raw))
        error = getattr(event, "error", None)
        self.error = (
            None
            if error is None
            else ErrorInfo(type=error.type, message=error.message, stack=error.stack)
        )


_NO_METADATA: dict[str, Any] = {}  # "{}": never modified (fold copies only non-empty ones)


def entity_row(state: EntityState) -> dict[str, Any]:
    row = attrs.asdict(state, recurse=False)
    row["entity_type"] = str(state.entity_type)
    row["start_time"] = state.start_time
    row["metadata"] = _metadata_text(state.metadata)
    row["error"] = _error_json(state.error)
    for name in _STAMPS:
        row[name] = stamp_text(row[name])
    return row


def _json(value: Any) -> Any:
    """JSON columns read back: text on SQLite, already decoded (by orjson) on asyncpg."""
    return orjson.loads(value) if isinstance(value, str) else value


ENTITY_COLUMNS = [c.name for c in entities.c]
_JSON_COLUMNS = ("error", "metadata")


def entity_arrays(states: Sequence[EntityState]) -> list[list[Any]]:
    """``entity_row`` of every state, one list per column (``ENTITY_COLUMNS`` order)."""
    arrays = []
    times: dict[datetime, str] = {}
    for name in ENTITY_COLUMNS:
        if name == "entity_type":
            arrays.append([str(s.entity_type) for s in states])
        elif name == "metadata":
            arrays.append([_metadata_text(s.metadata) for s in states])
        elif name == "error":
            arrays.append([_error_json(s.error) for s in states])
        elif name in _STAMPS:
            arrays.append([stamp_text(getattr(s, name), times) for s in states])
        else:  # start_time is a property of EntityState; the rest are its fields
            arrays.append([getattr(s, name) for s in states])
    return arrays


def entity_json_rows(states: Sequence[EntityState]) -> list[dict[str, Any]]:
    """``entity_row`` of every state in one pass, as ``_pg_rows`` reads them (PostgreSQL):
    building the column lists and zipping them back into rows cost twice as much."""
    times: dict[datetime, str] = {}
    return [
        {
            "entity_id": s.entity_id,
            "entity_type": str(s.entity_type),
            "site_id": s.site_id,
            "app": s.app,
            "app_version": s.app_version,
            "parent_id": s.parent_id,
            "business_key": s.business_key,
            "sub_key": s.sub_key,
            "status": s.status,
            "started_at": s.started_at,
            "first_seen_at": s.first_seen_at,
            "finished_at": s.finished_at,
            "updated_at": s.updated_at,
            "start_time": s.start_time,
            "duration_s": s.duration_s,
            "cpu_user_s": s.cpu_user_s,
            "cpu_system_s": s.cpu_system_s,
            "mem_max_mb": s.mem_max_mb,
            "progress": s.progress,
            "error": None if s.error is None else _error_json(s.error),
            "metadata": _metadata_text(s.metadata),
            "event_count": s.event_count,
            "identity_stamp": stamp_text(s.identity_stamp, times),
            "metrics_stamp": stamp_text(s.metrics_stamp, times),
            "metadata_stamp": stamp_text(s.metadata_stamp, times),
            "progress_stamp": stamp_text(s.progress_stamp, times),
            "error_stamp": stamp_text(s.error_stamp, times),
        }
        for s in states
    ]


def _metadata_text(metadata: Any) -> str:
    """A state's metadata as JSON text: a dict encoded, or the raw JSON a ``_Folded`` kept."""
    if type(metadata) is dict:
        return orjson.dumps(metadata).decode()
    return bytes(metadata).decode()


def _error_json(error: ErrorInfo | None) -> str | None:
    return None if error is None else orjson.dumps(attrs.asdict(error)).decode()


def _pg_type(column: sa.Column[Any]) -> str:
    if column.name in _JSON_COLUMNS:
        return "text"  # sent as text, cast to json in the SELECT (``_pg_rows``)
    return {
        sa.Double: "float8",
        sa.BigInteger: "int8",
        UTCDateTime: "timestamptz",
    }.get(type(column.type), "text")


def _pg_rows(table: sa.Table) -> Any:
    """``SELECT ... FROM json_to_recordset($1) AS r(column type, ...)``: the rows of ``table``
    as one JSON array of objects (``_pg_json_rows``), JSON columns as JSON strings of their text.

    One statement for any number of rows, compiled once, and one text parameter that orjson
    builds: asyncpg encodes an array parameter element by element with a Python-level
    isinstance check on each, which cost more than the rest of the upsert's client work when
    the rows travelled as one array per column. A JSON column's text travels as a string and
    is cast back (``::json``), so a ``\\u0000`` escape in it stays an escape.
    """
    types = ", ".join(f"{c.name} {_pg_type(c)}" for c in table.c)
    return sa.select(
        *(
            sa.literal_column(f"r.{c.name}::json" if c.name in _JSON_COLUMNS else f"r.{c.name}")
            for c in table.c
        )
    ).select_from(sa.text(f"json_to_recordset($1::text::json) AS r({types})"))


def _pg_json_rows(table: sa.Table, arrays: list[list[Any]]) -> str:
    """Rows given as one list per column of ``table``, as the JSON ``_pg_rows`` reads."""
    names = [str(c.name) for c in table.c]  # orjson takes keys of type str exactly
    rows = [dict(zip(names, row, strict=True)) for row in zip(*arrays, strict=True)]
    return orjson.dumps(rows).decode()


def entity_from_row(row: Any) -> EntityState:
    values = dict(row._mapping)
    del values["start_time"]
    values["metadata"] = _json(values["metadata"])
    values["error"] = None if values["error"] is None else ErrorInfo(**_json(values["error"]))
    for name in _STAMPS:
        values[name] = parse_stamp(values[name])
    return EntityState(**values)


def _has_nul(event: Event) -> bool:
    """PostgreSQL text cannot hold U+0000; such events are refused on both engines alike."""
    e, a = event.entity, event.app
    # One scan over the fields run together ("None" for an absent one holds no U+0000).
    return "\x00" in f"{e.id}{e.parent_id}{e.business_key}{e.sub_key}{a.name}{a.version}"


def _qmark(stmt: Any, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """SQLite: an INSERT ... ON CONFLICT of every column of its table as SQL text for the
    driver's executemany, and the values of the constants bound after the columns (the
    merge's 'failed', 2, ...), compiled once."""
    compiled = stmt.compile(dialect=dialect.engine.dialect)
    names, columns = list(compiled.positiontup or ()), [c.name for c in stmt.table.c]
    if names[: len(columns)] != columns:
        raise RuntimeError(f"unexpected parameter order for {stmt.table.name}: {names}")
    return str(compiled), tuple(compiled.binds[n].value for n in names[len(columns) :])


def _sqlite_rows(
    statement: tuple[str, tuple[Any, ...]], table: sa.Table, arrays: list[list[Any]]
) -> list[tuple[Any, ...]]:
    """Rows given as one list per column of ``table``, as ``_sqlite_executemany`` binds them
    to ``statement``: times as ``UTCDateTime``'s text, the statement's constants appended."""
    constants = statement[1]
    for k, column in enumerate(table.c):
        if isinstance(column.type, UTCDateTime):
            arrays[k] = [None if v is None else sqlite_time(v) for v in arrays[k]]
    return [(*row, *constants) for row in zip(*arrays, strict=True)]


async def _sqlite_executemany(
    conn: Any, statement: tuple[str, tuple[Any, ...]], rows: list[tuple[Any, ...]]
) -> None:
    """``_sqlite_rows`` written by one executemany on the driver's connection (in the open
    transaction): sqlite3 binds each row in C, where SQLAlchemy ran a Python conversion per
    value."""
    raw = (await conn.get_raw_connection()).driver_connection
    await raw.executemany(statement[0], rows)


# -- the merge, in SQL ----------------------------------------------------------------------------


def merge_set(dialect: Dialect, new: Any) -> dict[str, Any]:
    """The ON CONFLICT SET clause: stored row ``entities`` merged with ``excluded`` (``new``).

    Line for line ``EntityState.merge``: every expression reads the old row's values (SQL
    semantics of UPDATE SET), so the groups do not see each other's new values.
    """
    old = entities.c

    def rank(status: Any) -> Any:
        return sa.case((status == "failed", 2), (status == "finished", 1), else_=0)

    def least_of(a: Any, b: Any) -> Any:  # None-ignoring, like store._min
        return dialect.least(sa.func.coalesce(a, b), sa.func.coalesce(b, a))

    def greatest_of(a: Any, b: Any) -> Any:
        return dialect.greatest(sa.func.coalesce(a, b), sa.func.coalesce(b, a))

    started = least_of(old.started_at, new.started_at)
    first_seen = dialect.least(old.first_seen_at, new.first_seen_at)
    out: dict[str, Any] = {
        "status": sa.case((rank(new.status) > rank(old.status), new.status), else_=old.status),
        "started_at": started,
        "first_seen_at": first_seen,
        "finished_at": greatest_of(old.finished_at, new.finished_at),
        "updated_at": dialect.greatest(old.updated_at, new.updated_at),
        "start_time": sa.func.coalesce(started, first_seen),
        "event_count": old.event_count + new.event_count,
    }
    for stamp, fields in MERGE_GROUPS.items():
        later = sa.and_(
            new[stamp].is_not(None), sa.or_(old[stamp].is_(None), new[stamp] > old[stamp])
        )
        for name in (stamp, *fields):
            out[name] = sa.case((later, new[name]), else_=old[name])
    return out


# -- entity cursors -------------------------------------------------------------------------------


def _encode_entity_cursor(sort: str, value: datetime, entity_id: str) -> str:
    return pack_cursor(sort, value, entity_id)


def _decode_entity_cursor(cursor: str, sort: str) -> tuple[datetime, str]:
    values = unpack_cursor(cursor)
    try:
        cursor_sort, value, entity_id = values
        when = datetime.fromisoformat(value)
        if cursor_sort != sort or type(entity_id) is not str or when.utcoffset() is None:
            raise ValueError("issued for another sort order" if cursor_sort != sort else "bad")
    except (ValueError, TypeError) as exc:
        raise FieldValueError("cursor", f"not a cursor this service issued ({exc})") from None
    return when, entity_id


# -- errors ---------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """A short cause without SQL text or bound values (they may hold event data)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0]}" if text else type(orig).__name__


@contextlib.contextmanager
def _translate_errors(action: str) -> Iterator[None]:
    """Database failures as the emitter contract's errors: permanent only for bad data.

    Besides SQLAlchemy's wrapped errors, the drivers' own: the hot paths write through the raw
    connections (asyncpg's COPY, sqlite3's executemany), where nothing wraps them.
    """
    import asyncpg  # local: only installed deployments of PostgreSQL raise these

    try:
        yield
    except (RetryableError, PermanentError, FieldValueError):
        raise
    except SchemaTooNew as exc:
        raise PermanentError(str(exc)) from None
    except (
        sa.exc.IntegrityError,
        sa.exc.DataError,
        asyncpg.IntegrityConstraintViolationError,
        asyncpg.DataError,
        sqlite3.IntegrityError,
        sqlite3.DataError,
    ) as exc:
        raise PermanentError(f"{action}: rejected by the database: {_reason(exc)}") from exc
    except (
        sa.exc.DBAPIError,
        sa.exc.InterfaceError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        sqlite3.Error,  # a full disk, an I/O error, a locked or damaged file
        OSError,
        TimeoutError,
    ) as exc:
        raise RetryableError(f"{action}: database unavailable: {_reason(exc)}") from exc


def _chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# -- the store ------------------------------------------------------------------------------------


class SqlStore(ManagedStore):
    """Emitter, query adapter and managed store over one SQLite file or PostgreSQL database."""

    Settings = Settings
    settings: Settings

    def __init__(self, name: str, settings: Settings) -> None:
        super().__init__(name, settings)
        self._engine: AsyncEngine | None = None
        self._dialect: Dialect | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._grouped: _GroupedWrites | None = None  # SQLite: see _GroupedWrites

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, apply missing migrations, make the partitions ahead (PostgreSQL)."""
        url = engine_url(self.settings.url)
        if url.drivername.startswith("sqlite"):
            options: dict[str, Any] = {}
        else:
            options = {
                "json_deserializer": orjson.loads,  # asyncpg's json codec decodes with this
                "pool_pre_ping": True,  # a restarted server costs one failed ping, not a batch
                "connect_args": {
                    "timeout": self.settings.connect_timeout,
                    # JIT compiles plans for milliseconds-long OLTP queries: pure overhead here.
                    "server_settings": {"application_name": f"wafermon {self.name}", "jit": "off"},
                },
            }
        self._engine = create_async_engine(
            url, pool_size=self.settings.pool_size, max_overflow=0, **options
        )
        self._dialect = dialect_for(self._engine)
        if self._dialect.name == "sqlite":
            self._grouped = _GroupedWrites(self._dialect, self._apply)
        with _translate_errors("start"):
            if url.drivername.startswith("sqlite"):
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            async with writing(self._dialect) as conn:
                applied = await conn.run_sync(migrate)
            if applied:
                log.info("%s: applied schema migrations %s", self.name, applied)
            await self._dialect.after_migrate()

    async def close(self) -> None:
        await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def health(self) -> Health:
        if self._engine is None:
            return Health(False, "not started")

        async def ping(conn: AsyncConnection) -> None:
            await conn.execute(sa.text("SELECT 1"))

        try:
            async with asyncio.timeout(2.0):
                await self._reading(ping)
        except Exception as exc:  # noqa: BLE001 - health must not raise
            return Health(False, f"database unreachable: {_reason(exc)}")
        return Health(True)

    def stats(self) -> dict[str, float]:
        """Connection pool use and, on SQLite, how many batches its commits carried, for the
        host's /metrics."""
        grouped = {}
        if self._grouped is not None:
            grouped = {
                "write_commits": float(self._grouped.commits),
                "write_batches": float(self._grouped.batches),
            }
        pool = self._engine.sync_engine.pool if self._engine is not None else None
        if pool is None or not hasattr(pool, "checkedout"):
            return grouped
        return {
            "pool_size": float(pool.size()),
            "pool_checked_out": float(pool.checkedout()),
            "pool_overflow": float(max(0, pool.overflow())),
            **grouped,
        }

    @property
    def dialect(self) -> Dialect:
        if self._dialect is None:
            raise RuntimeError(f"{self!r} is not started")
        return self._dialect

    # -- writing ----------------------------------------------------------------------------------

    async def ingest(
        self, events: Sequence[Event], *, bodies: Sequence[bytes | None] | None = None
    ) -> list[bool]:
        """Store new events, merge them into entity state; True per event that was new.

        ``bodies``, when given, is the JSON text each event was decoded from (None where
        unknown); it is stored as the event's ``body`` instead of encoding the event again.
        Events whose text fields hold U+0000 are refused: the others are stored, then a
        PermanentError names the refused ones.
        """
        if self._dialect is None:
            raise RuntimeError(f"{self!r} is not started")
        if bodies is None:
            bodies = [None] * len(events)
        seen: set[Any] = set()
        unique: list[tuple[Event, bytes | None]] = []
        first: list[bool] = []  # per input position: the batch's first copy of its event_id
        for event, body in zip(events, bodies, strict=True):
            if event.event_id in seen:
                first.append(False)
            else:
                first.append(True)
                seen.add(event.event_id)
                unique.append((event, body))
        refused = [e.event_id for e, _ in unique if _has_nul(e)]
        if refused:
            unique = [(e, b) for e, b in unique if not _has_nul(e)]
        now = datetime.now(UTC)
        records = [event_record(e, now, b) for e, b in unique]
        new = await self._store([e for e, _ in unique], records, refused, now)
        return [f and str(e.event_id) in new for e, f in zip(events, first, strict=True)]

    async def ingest_wire(self, events: Sequence[WireEvent], lines: Sequence[bytes]) -> list[bool]:
        """``ingest`` for events that passed the fast decoder, with their JSON text.

        The columns come from the wire events and each line is the stored body; the fold
        reads a ``_Folded`` view of each new event (its time parsed, its metadata decoded):
        no ``Event`` is built. Same answer, same rules as ``ingest``.
        """
        if self._dialect is None:
            raise RuntimeError(f"{self!r} is not started")
        now = datetime.now(UTC)
        seen: set[str] = set()
        first: list[bool] = []
        records: list[Record] = []
        views: list[_Folded] = []
        refused: list[str] = []
        texts: list[str] = []  # each record's time as the wire wrote it (RFC 3339, UTC)
        parse = datetime.fromisoformat
        for event, line in zip(events, lines, strict=True):
            event_id = event.event_id
            if event_id in seen:
                first.append(False)
                continue
            seen.add(event_id)
            first.append(True)
            # Text fields can hold U+0000 only written as an escape: look closer only then
            # (a backslash is one memchr away; most lines have none).
            if b"\\" in line and b"\\u0000" in line and _has_nul(event):
                refused.append(event_id)
                continue
            when = parse(event.time)
            texts.append(event.time)
            records.append(wire_record(event, when, line, now))
            views.append(_Folded(event, when))
        new = await self._store(views, records, refused, now, texts)
        return [f and e.event_id in new for e, f in zip(events, first, strict=True)]

    async def _store(
        self,
        items: Sequence[Any],
        records: list[Record],
        refused: list[Any],
        now: datetime,
        times: list[str] | None = None,
    ) -> set[str]:
        """Write the rows (``items[k]``: what the fold reads of ``records[k]``); the new ids.

        Raises PermanentError naming the ``refused`` ids once the others are stored.
        """
        new: set[str] = set()
        if records:
            new = await self._shielded(self._write(items, records, now, times))
        if refused:
            raise PermanentError(
                "text fields (entity ids, keys, app) must not contain U+0000", refused
            )
        return new

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a database call (a write transaction, a read) to its end even if the caller is
        cancelled.

        A cancelled emit counts as not delivered and is retried (idempotently), but the
        transaction itself must not be abandoned half-way: with aiosqlite that leaves a pooled
        connection holding SQLite's write lock. A read cancelled twice (a timeout, then a
        shutdown) leaves its connection's close orphaned while aiosqlite's thread still runs
        the statement, which then answers a loop that may be closed. Shielded, the caller is
        released at once and the call finishes cleanly; close() waits for it.
        """
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # mark it retrieved
        return await asyncio.shield(task)

    async def _write(
        self,
        items: Sequence[Any],
        records: list[Record],
        now: datetime,
        times: list[str] | None = None,
    ) -> set[str]:
        """One transaction (on SQLite perhaps shared with other waiting batches, see
        ``_GroupedWrites``): the gate and the new events, then the merge of the new ones.

        Everything that needs no database (the event rows, the fold and the merge's rows) is
        made before the transaction, on the guess that every event is new (they are unless
        redelivered; else the merge's rows are made again from the new ones): on SQLite the
        write lock, one writer at a time, is then held only while the database works.
        """
        dialect = self.dialect
        size = self.settings.batch_chunk
        chunks = [
            (c, dialect.prepare_events(c, None if times is None else times[k : k + size]))
            for k, c in zip(range(0, len(records), size), _chunks(records, size), strict=True)
        ]
        write = _Write(items, records, chunks, self._merge_rows(items))
        with _translate_errors("ingest"):
            await dialect.before_ingest((r[1] for r in records), self._cutoff(now))
            if self._grouped is not None:
                return await self._grouped.write(write)
            async with writing(dialect) as conn:
                return await self._apply(conn, write)

    async def _apply(self, conn: Any, write: _Write) -> set[str]:
        """Write one batch in the open transaction ``conn``; the ids that were new."""
        new: set[str] = set()
        for chunk, prepared in write.chunks:
            new |= await self.dialect.insert_events(conn, chunk, prepared)
        merge = write.merge
        if len(new) < len(write.records):
            merge = self._merge_rows(
                [e for e, r in zip(write.items, write.records, strict=True) if r[0] in new]
            )
        await self._upsert(conn, *merge)
        return new

    def _merge_rows(self, fresh: Sequence[Any]) -> tuple[Any, Any]:
        """The entities' and the apps' rows ``fresh`` (new events) merge into, ready to send
        (``_upsert``): on PostgreSQL one JSON text each, on SQLite the rows to bind."""
        # Sorted by key: concurrent batches lock shared rows in the same order (no deadlock).
        # On PostgreSQL the rows travel as one JSON array and are upserted by one statement,
        # in array order; on SQLite an executemany of one compiled statement.
        states = [s for _, s in sorted(fold(fresh).items())]
        app_arrays = _app_arrays(fresh)
        if not states:
            return None, None
        if self.dialect.name == "postgresql":
            rows = entity_json_rows(states)
            if list(rows[0]) != ENTITY_COLUMNS:  # the table gained a column, not the rows
                raise RuntimeError(f"entity rows do not match the entities table: {list(rows[0])}")
            return orjson.dumps(rows).decode(), _pg_json_rows(apps, app_arrays)
        return (
            _sqlite_rows(self._sqlite_entity_upsert, entities, entity_arrays(states)),
            _sqlite_rows(self._sqlite_apps_upsert, apps, app_arrays),
        )

    async def _upsert(self, conn: Any, entity_rows: Any, app_rows: Any) -> None:
        """Merge ``_merge_rows`` into the stored entities and apps."""
        if entity_rows is None:
            return
        if self.dialect.name == "postgresql":
            await conn.exec_driver_sql(self._pg_entity_upsert, (entity_rows,))
            await conn.exec_driver_sql(self._pg_apps_upsert, (app_rows,))
        else:
            await _sqlite_executemany(conn, self._sqlite_entity_upsert, entity_rows)
            await _sqlite_executemany(conn, self._sqlite_apps_upsert, app_rows)

    def _entity_upsert(self, select: Any = None) -> Any:
        """Insert rows (VALUES, or ``select``), merging into existing ones (``merge_set``)."""
        insert = self.dialect.insert(entities)
        if select is not None:
            insert = insert.from_select(ENTITY_COLUMNS, select)
        return insert.on_conflict_do_update(
            index_elements=[entities.c.entity_id], set_=merge_set(self.dialect, insert.excluded)
        )

    @functools.cached_property
    def _sqlite_entity_upsert(self) -> tuple[str, tuple[Any, ...]]:
        return _qmark(self._entity_upsert(), self.dialect)

    @functools.cached_property
    def _pg_entity_upsert(self) -> str:
        return self._compile(self._entity_upsert(_pg_rows(entities)))

    def _compile(self, stmt: Any) -> str:
        """SQL text for exec_driver_sql; the merge's constants rendered inline."""
        dialect = self.dialect.engine.dialect
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    def _apps_upsert(self, insert: Any) -> Any:
        return insert.on_conflict_do_update(
            index_elements=[apps.c.name, apps.c.version],
            set_={
                "first_seen": self.dialect.least(apps.c.first_seen, insert.excluded.first_seen),
                "last_seen": self.dialect.greatest(apps.c.last_seen, insert.excluded.last_seen),
            },
        )

    @functools.cached_property
    def _sqlite_apps_upsert(self) -> tuple[str, tuple[Any, ...]]:
        return _qmark(self._apps_upsert(self.dialect.insert(apps)), self.dialect)

    @functools.cached_property
    def _pg_apps_upsert(self) -> str:
        insert = self.dialect.insert(apps).from_select([c.name for c in apps.c], _pg_rows(apps))
        return self._compile(self._apps_upsert(insert))

    def _cutoff(self, now: datetime) -> datetime:
        return now - timedelta(seconds=self.settings.hot_retention)

    async def enforce_retention(self) -> int:
        """Remove events older than ``hot_retention`` (and entities past ``entity_retention``).

        Returns the number of events removed. Entity rows are the current state of jobs and
        small; they stay ``entity_retention`` (30 days by default) after their last event so
        the job list covers more than the raw events do.
        """
        removed = await self._shielded(self._retention(datetime.now(UTC)))
        if removed:
            log.info("%s: removed %d events past hot_retention", self.name, removed)
        return removed

    async def _retention(self, now: datetime) -> int:
        with _translate_errors("retention"):
            removed = await self.dialect.enforce_retention(self._cutoff(now))
            if self.settings.entity_retention:
                limit = now - timedelta(seconds=self.settings.entity_retention)
                old = entities.c.updated_at < limit
                gone = await self.dialect.delete_chunked(entities, entities.c.entity_id, old)
                if gone:
                    log.info("%s: removed %d entities past entity_retention", self.name, gone)
        return removed

    # -- archiving --------------------------------------------------------------------------------

    async def events_before(
        self,
        cutoff: datetime,
        *,
        after: tuple[datetime, UUID] | None = None,
        limit: int = 10_000,
    ) -> list[dict[str, Any]]:
        """Events with ``time < cutoff`` in (time, event_id) order after the keyset ``after``.

        What an archiver copies out: each row holds the event's columns, ``body`` as the JSON
        text stored (not decoded), so an archive keeps the wire JSON exactly.
        """
        c = events.c
        where = [c.time < cutoff]
        if after is not None:
            where.append(
                sa.tuple_(c.time, c.event_id)
                > sa.tuple_(_bind(c.time, after[0]), _bind(c.event_id, after[1]))
            )
        columns = [col for col in events.c if col.name not in ("body", "received_at")]
        stmt = (
            sa.select(*columns, sa.cast(c.body, sa.Text).label("body"))
            .where(*where)
            .order_by(c.time, c.event_id)
            .limit(limit)
        )
        return [dict(row._mapping) for row in await self._fetch(stmt)]

    async def delete_events(self, keys: Sequence[tuple[datetime, UUID]]) -> int:
        """Delete the events named by (time, event_id), and their idempotency-gate rows.

        For an archiver, once the events are verified elsewhere. Entity rows stay: the job and
        subjob state remains answerable. Idempotent; returns how many event rows went.
        """
        return await self._shielded(self._delete_events(sorted(keys)))

    async def _delete_events(self, keys: list[tuple[datetime, UUID]]) -> int:
        c, removed = events.c, 0
        with _translate_errors("delete events"):
            for chunk in _chunks(keys, 1000):
                ids = [event_id for _, event_id in chunk]
                # The time bounds let PostgreSQL look only at the partitions that hold them.
                async with writing(self.dialect) as conn:
                    result = await conn.execute(
                        sa.delete(events).where(
                            c.time >= chunk[0][0], c.time <= chunk[-1][0], c.event_id.in_(ids)
                        )
                    )
                    removed += result.rowcount
                    if self.dialect.name == "postgresql":
                        await conn.execute(
                            sa.delete(event_ids).where(event_ids.c.event_id.in_(ids))
                        )
        return removed

    # -- reading ----------------------------------------------------------------------------------

    async def _reading(self, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``read(conn)`` on a pooled connection, shielded and waited for by close()."""
        engine = self._engine
        if engine is None:
            raise RuntimeError(f"{self!r} is not started")

        async def run() -> T:
            with _translate_errors("query"):
                async with engine.connect() as conn:
                    return await read(conn)

        return await self._shielded(run())

    async def _fetch(self, stmt: sa.Executable) -> list[Any]:
        async def rows(conn: AsyncConnection) -> list[Any]:
            return list(await conn.execute(stmt))

        return await self._reading(rows)

    async def query(self, query: Query) -> QueryResult:
        """Events matching every filter, in (time, event_id) order, keyset-paginated."""
        c = events.c
        where = []
        if query.start is not None:
            where.append(c.time >= query.start)
        if query.end is not None:
            where.append(c.time < query.end)
        for column, value in (
            (c.site_id, query.site_id),
            (c.app, query.app),
            (c.entity_type, query.entity_type),
            (c.entity_id, query.entity_id),
            (c.business_key, query.business_key),
            (c.sub_key, query.sub_key),
            (c.parent_id, query.parent_id),
        ):
            if value is not None:
                where.append(column == str(value))
        if query.status is not None:
            where.append(c.kind.in_(sorted(str(k) for k in STATUSES[query.status])))
        if (after := query.after_cursor()) is not None:
            where.append(
                sa.tuple_(c.time, c.event_id)
                > sa.tuple_(_bind(c.time, after[0]), _bind(c.event_id, after[1]))
            )
        stmt = (
            sa.select(_body_text(c.body))
            .where(*where)
            .order_by(c.time, c.event_id)
            .limit(query.limit + 1)
        )
        found = [stored_event(row.body) for row in await self._fetch(stmt)]
        page = found[: query.limit]
        more = len(found) > query.limit
        return QueryResult(page, encode_cursor(page[-1]) if more else None)

    async def entities(self, query: EntityQuery) -> EntityPage:
        """Jobs or subjobs matching the filters, in the asked order, keyset-paginated."""
        n = entities.c
        where = [n.entity_type == str(query.entity_type)]
        for column, value in (
            (n.site_id, query.site_id),
            (n.app, query.app),
            (n.status, query.status),
            (n.business_key, query.business_key),
            (n.sub_key, query.sub_key),
            (n.parent_id, query.parent_id),
        ):
            if value is not None:
                where.append(column == value)
        if query.start is not None:
            where.append(n.start_time >= query.start)
        if query.end is not None:
            where.append(n.start_time < query.end)
        descending = query.sort.startswith("-")
        column = n[query.sort.lstrip("-")]
        if query.cursor is not None:
            value, entity_id = _decode_entity_cursor(query.cursor, query.sort)
            key, bound = (
                sa.tuple_(column, n.entity_id),
                sa.tuple_(_bind(column, value), _bind(n.entity_id, entity_id)),
            )
            where.append(key < bound if descending else key > bound)
        order = (column.desc(), n.entity_id.desc()) if descending else (column, n.entity_id)
        stmt = sa.select(entities).where(*where).order_by(*order).limit(query.limit + 1)
        found = [entity_from_row(row) for row in await self._fetch(stmt)]
        page = found[: query.limit]
        cursor = None
        if len(found) > query.limit:
            last = page[-1]
            cursor = _encode_entity_cursor(query.sort, getattr(last, column.name), last.entity_id)
        return EntityPage(page, cursor)

    async def job_detail(self, entity_id: str, *, events_limit: int = 1000) -> JobDetail | None:
        n, c = entities.c, events.c

        async def detail(conn: AsyncConnection) -> JobDetail | None:
            row = (await conn.execute(sa.select(entities).where(n.entity_id == entity_id))).first()
            if row is None:
                return None
            subjobs = await conn.execute(
                sa.select(entities)
                .where(n.parent_id == entity_id)
                .order_by(n.start_time, n.entity_id)
            )
            bodies = await conn.execute(
                sa.select(_body_text(c.body))
                .where(c.entity_id == entity_id)
                .order_by(c.time, c.event_id)
                .limit(events_limit)
            )
            return JobDetail(
                job=entity_from_row(row),
                subjobs=[entity_from_row(r) for r in subjobs],
                events=[stored_event(r.body) for r in bodies],
            )

        return await self._reading(detail)


@attrs.frozen
class _Write:
    """One batch, ready to write: what the fold reads of each record, the records, their
    rows in chunks, and the merge's rows (made on the guess that every event is new)."""

    items: Sequence[Any]
    records: list[Record]
    chunks: list[tuple[Sequence[Record], Any]]
    merge: tuple[Any, Any]


class _GroupedWrites:
    """SQLite's batches, several to a transaction.

    SQLite has one writer at a time, so the batches that arrive while one is written wait for
    the lock anyway; they all go into the next transaction, which costs one commit for all. The
    commit is most of SQLite's write path: it writes every page the batch dirtied to the WAL,
    and random event ids dirty nearly a page of the id index each, so batches that share a
    commit share pages too. Each batch is still written as it would be alone, in arrival order
    (a later batch's copy of an id is a duplicate of the earlier one's), and its caller gets
    its own new ids. When a group's transaction fails, its batches are written again one per
    transaction: a batch that cannot be written fails alone.
    """

    def __init__(
        self, dialect: Dialect, apply: Callable[[Any, _Write], Awaitable[set[str]]]
    ) -> None:
        self._dialect = dialect
        self._apply = apply
        self._waiting: list[tuple[_Write, asyncio.Future[set[str]]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0
        self.batches = 0

    async def write(self, write: _Write) -> set[str]:
        """The new ids of ``write``'s batch once its transaction is committed."""
        future: asyncio.Future[set[str]] = asyncio.get_running_loop().create_future()
        self._waiting.append((write, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_waiting())
        return await future

    async def _write_waiting(self) -> None:
        group: list[tuple[_Write, asyncio.Future[set[str]]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    results = await self._transaction([write for write, _ in group])
                except Exception as exc:  # noqa: BLE001 - its caller raises it
                    if len(group) == 1:
                        _settle(group[0][1], exc)
                        group = []
                        continue
                    for write, future in group:  # each alone: the bad one fails, not the rest
                        try:
                            _settle(future, (await self._transaction([write]))[0])
                        except Exception as alone:  # noqa: BLE001 - its caller raises it
                            _settle(future, alone)
                else:
                    for (_, future), result in zip(group, results, strict=True):
                        _settle(future, result)
                group = []
        finally:
            self._writer = None
            for _, future in group + self._waiting:  # the writer itself was cancelled
                _settle(future, RuntimeError("the store stopped before this batch was written"))
            self._waiting = []

    async def _transaction(self, writes: list[_Write]) -> list[set[str]]:
        async with writing(self._dialect) as conn:
            results = [await self._apply(conn, write) for write in writes]
        self.commits += 1
        self.batches += len(writes)
        return results


def _settle(future: asyncio.Future[set[str]], outcome: set[str] | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _app_arrays(fresh: Sequence[Any]) -> list[list[Any]]:
    """The apps rows of new events, one list per column of ``apps``: each (name, version)
    with the first and last time an event of it was seen, sorted by key."""
    seen: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for e in fresh:
        key = (e.app.name, e.app.version or "")
        found = seen.get(key)
        if found is None:
            seen[key] = (e.time, e.time)
        elif e.time < found[0] or e.time > found[1]:
            seen[key] = (min(found[0], e.time), max(found[1], e.time))
    rows = [(n, v, lo, hi) for (n, v), (lo, hi) in sorted(seen.items())]
    if [c.name for c in apps.c] != ["name", "version", "first_seen", "last_seen"]:
        raise RuntimeError("the apps table changed: update _app_arrays")
    return [list(column) for column in zip(*rows, strict=True)] or [[] for _ in apps.c]


def _body_text(body: sa.Column[Any]) -> sa.Label[Any]:
    """The stored JSON as text: the fast decoder reads it, no driver-side JSON decoding."""
    return sa.cast(body, sa.Text).label("body")


def _bind(column: sa.ColumnElement[Any], value: Any) -> sa.BindParameter[Any]:
    """A bound value typed like ``column`` (so UTCDateTime/Uuid conversions apply in tuples)."""
    return sa.bindparam(None, value, type_=column.type)
