"""Object formats: gzipped JSON Lines and Parquet, written from events and read back as events.

Both carry each event's wire JSON unchanged, so reading returns exactly what was written.
Parquet adds the columns queries filter on (time, site, app, entity, keys, kind), each object
sorted by ``(time, event_id)`` and cut into row groups whose ``time`` statistics let a reader
skip the groups a query's range cannot touch. pyarrow writes and reads it: the reference
implementation, with zstd and statistics built in.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from wafermon import Event, Query, encode_event
from wafermon.interfaces import STATUSES

SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("kind", pa.string()),
        ("site_id", pa.string()),
        ("app", pa.string()),
        ("entity_type", pa.string()),
        ("entity_id", pa.string()),
        ("parent_id", pa.string()),
        ("business_key", pa.string()),
        ("sub_key", pa.string()),
        ("body", pa.string()),
    ]
)
#: Query field -> Parquet column, for the equality filters pushed into the scan.
EQUALS = {
    "site_id": "site_id",
    "app": "app",
    "entity_type": "entity_type",
    "entity_id": "entity_id",
    "business_key": "business_key",
    "sub_key": "sub_key",
}


class CorruptObject(Exception):
    """An object that cannot be read as its format; the message says where and why."""


# -- writing ------------------------------------------------------------------------------------


def gzip_bytes(ndjson: bytes) -> bytes:
    """A JSON Lines object's body. Level 6, gzip's usual balance: 9 is much slower for a few
    percent; mtime 0 so the same lines always make the same bytes."""
    return gzip.compress(ndjson, 6, mtime=0)


def rows_of_events(events: Sequence[Event]) -> dict[str, list[Any]]:
    """Column lists for ``table_of_rows``, from event objects."""
    cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for e in events:
        cols["event_id"].append(str(e.event_id))
        cols["time"].append(e.time)
        cols["kind"].append(str(e.kind))
        cols["site_id"].append(e.site_id)
        cols["app"].append(e.app.name)
        cols["entity_type"].append(str(e.entity.type))
        cols["entity_id"].append(e.entity.id)
        cols["parent_id"].append(e.entity.parent_id)
        cols["business_key"].append(e.entity.business_key)
        cols["sub_key"].append(e.entity.sub_key)
        cols["body"].append(encode_event(e).decode())
    return cols


def sorted_table(table: pa.Table) -> pa.Table:
    """Rows in ``(time, event_id)`` order, the order queries return and statistics assume."""
    return table.sort_by([("time", "ascending"), ("event_id", "ascending")])


def parquet_bytes(table: pa.Table, row_group_rows: int) -> bytes:
    sink = io.BytesIO()
    pq.write_table(
        sorted_table(table.cast(SCHEMA)),
        sink,
        row_group_size=row_group_rows,
        compression="zstd",
        use_dictionary=["kind", "site_id", "app", "entity_type"],
        write_statistics=["time", "event_id"],
    )
    return sink.getvalue()


# -- reading ------------------------------------------------------------------------------------


def read_jsonl_gz(data: bytes, key: str) -> Iterator[bytes]:
    """The lines of a gzipped JSONL object; CorruptObject if it does not decompress."""
    try:
        text = gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise CorruptObject(f"{key}: not a complete gzip stream ({exc})") from None
    return (line for line in text.split(b"\n") if line.strip())


class SparseFile(io.RawIOBase):
    """A read-only file of ``size`` bytes of which only some ranges were fetched.

    pyarrow reads a Parquet footer and then the column chunks of the row groups asked for;
    handing it this file after fetching exactly those ranges turns the statistics into fewer
    bytes fetched from S3. Reading a range that was not fetched is a bug, reported loudly.
    """

    def __init__(self, size: int, segments: dict[int, bytes]) -> None:
        self._size, self._segments, self._pos = size, segments, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        for start, data in self._segments.items():
            if start <= self._pos and self._pos + want <= start + len(data):
                offset = self._pos - start
                buffer[:want] = data[offset : offset + want]
                self._pos += want
                return want
        raise OSError(f"bytes {self._pos}-{self._pos + want} were not fetched")


def footer_length(tail: bytes, key: str) -> int:
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise CorruptObject(f"{key}: not a Parquet file (no PAR1 trailer)")
    return int.from_bytes(tail[-8:-4], "little") + 8


def open_parquet(size: int, segments: dict[int, bytes], key: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(SparseFile(size, segments))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CorruptObject(f"{key}: unreadable Parquet footer ({exc})") from None


def row_group_ranges(pf: pq.ParquetFile, groups: Sequence[int]) -> list[tuple[int, int]]:
    """Byte ranges ``[start, end)`` holding the column chunks of ``groups``, merged."""
    spans = []
    for g in groups:
        rg = pf.metadata.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            start = col.dictionary_page_offset or col.data_page_offset
            if col.has_dictionary_page and col.dictionary_page_offset is not None:
                start = min(start, col.dictionary_page_offset)
            spans.append((start, start + col.total_compressed_size))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + 64 * 1024:  # close gaps: fewer requests
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def groups_for(pf: pq.ParquetFile, start: datetime | None, end: datetime | None) -> list[int]:
    """Row groups whose ``time`` statistics meet ``[start, end)`` (all, without statistics)."""
    time_col = pf.schema_arrow.get_field_index("time")
    chosen = []
    for g in range(pf.metadata.num_row_groups):
        stats = pf.metadata.row_group(g).column(time_col).statistics
        if stats is None or not stats.has_min_max:
            chosen.append(g)
            continue
        low, high = _aware(stats.min), _aware(stats.max)
        if (start is None or high >= start) and (end is None or low < end):
            chosen.append(g)
    return chosen


def _aware(value: Any) -> datetime:
    # Statistics of a UTC timestamp column come back naive (UTC) or aware, by pyarrow version.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def read_groups(pf: pq.ParquetFile, groups: Sequence[int], key: str) -> pa.Table:
    try:
        return pf.read_row_groups(list(groups))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CorruptObject(f"{key}: unreadable row groups ({exc})") from None


def filter_table(table: pa.Table, query: Query, after: tuple[datetime, Any] | None) -> pa.Table:
    """The rows passing every filter of ``query`` and the cursor, in the scan itself."""
    mask = None

    def both(m: Any) -> None:
        nonlocal mask
        mask = m if mask is None else pc.and_(mask, m)

    time = table["time"]
    if query.start is not None:
        both(pc.greater_equal(time, pa.scalar(query.start, SCHEMA.field("time").type)))
    if query.end is not None:
        both(pc.less(time, pa.scalar(query.end, SCHEMA.field("time").type)))
    for field, column in EQUALS.items():
        value = getattr(query, field)
        if value is not None:
            both(pc.fill_null(pc.equal(table[column], str(value)), False))
    if query.status is not None:
        kinds = pa.array(sorted(str(k) for k in STATUSES[query.status]))
        both(pc.is_in(table["kind"], value_set=kinds))
    if after is not None:
        at = pa.scalar(after[0], SCHEMA.field("time").type)
        later = pc.greater(time, at)
        same = pc.and_(pc.equal(time, at), pc.greater(table["event_id"], str(after[1])))
        both(pc.or_(later, same))
    return table if mask is None else table.filter(mask)
