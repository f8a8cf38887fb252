"""Reading objects back as events: partition listing and pruning, both formats, pushdown.

Shared by the query adapter (which filters by a Query) and the compactor (which reads whole
objects). A Parquet object larger than ``WHOLE_OBJECT_BYTES`` is read in ranges: its footer
first, then only the column chunks of the row groups whose ``time`` statistics meet the
query's range.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from wafermon import Event, EventDecodeError, Query, decode_event

from . import formats, layout
from .bucket import Bucket, ObjectInfo

log = logging.getLogger(__name__)

#: Below this size an object is fetched in one GET: cheaper than footer + ranges.
WHOLE_OBJECT_BYTES = 4 * 2**20
TAIL_BYTES = 64 * 1024
READ_CONCURRENCY = 4


async def sites(bucket: Bucket, prefix: str) -> list[str]:
    found = []
    async for item in bucket.list(prefix + "/", delimiter="/"):
        if isinstance(item, str) and (site := layout.parse_site(item, prefix)) is not None:
            found.append(site)
    return sorted(found)


async def days(bucket: Bucket, prefix: str, site_id: str, first: date | None = None) -> list[date]:
    """The dates a site has objects for, from ``first`` on: a query of last week lists from
    there, not through ten years of dates."""
    site = layout.site_prefix(prefix, site_id)
    # Start after "site=X/date=<day before>": on AWS that key sorts just before that day's
    # keys (one day too many, filtered by the caller); stores that list folders (SeaweedFS)
    # skip the folder of that name. Both then list ``first`` and every later date.
    after = f"{site}date={(first - layout.DAY).isoformat()}" if first is not None else None
    found = []
    async for item in bucket.list(site, delimiter="/", start_after=after):
        if isinstance(item, str) and (day := layout.parse_date(item)) is not None:
            found.append(day)
    return sorted(found)


def committed(objects: Iterable[ObjectInfo]) -> list[ObjectInfo]:
    """The data objects that count: every emitter object, archive objects with a manifest."""
    objects = list(objects)
    manifests = {o.key for o in objects if o.key.endswith(layout.MANIFEST)}
    return [
        o
        for o in objects
        if layout.is_data(o.key)
        and (not layout.is_archive(o.key) or layout.manifest_key(o.key) in manifests)
    ]


class ObjectCache:
    """Recently read objects by (key, size), bounded by bytes.

    Keys name their content (a digest of the event ids), so a cached copy is the object; the
    size from the listing catches the rare rewrite. It makes paging cheap: every page of a
    query reads the partition it continues in again.
    """

    def __init__(self, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    async def get(self, bucket: Bucket, obj: ObjectInfo) -> bytes:
        item = (obj.key, obj.size)
        data = self._items.get(item)
        if data is not None:
            self._items.move_to_end(item)
            return data
        data = await bucket.get(obj.key)
        if len(data) <= self.max_bytes // 4:
            self._items[item] = data
            self.size += len(data)
            while self.size > self.max_bytes:
                self.size -= len(self._items.popitem(last=False)[1])
        return data


class ParquetObject:
    """One Parquet object opened for reading: its footer, and row groups fetched on demand
    (the whole object when it is small, else only the byte ranges of the groups asked for)."""

    def __init__(self, bucket: Bucket, obj: ObjectInfo, size: int, segments: dict[int, bytes]):
        self.bucket, self.obj, self.size, self.segments = bucket, obj, size, segments
        self.whole = 0 in segments and len(segments[0]) == size
        self.file = formats.open_parquet(size, segments, obj.key)

    @classmethod
    async def open(cls, bucket: Bucket, obj: ObjectInfo, cache: ObjectCache | None = None):
        if obj.size <= WHOLE_OBJECT_BYTES:
            data = await (cache.get(bucket, obj) if cache else bucket.get(obj.key))
            formats.footer_length(data[-12:], obj.key)
            return cls(bucket, obj, len(data), {0: data})
        size = obj.size
        tail = await bucket.get(obj.key, (max(0, size - TAIL_BYTES), size))
        need = formats.footer_length(tail, obj.key)
        if need > len(tail):
            tail = await bucket.get(obj.key, (max(0, size - need), size))
        return cls(bucket, obj, size, {size - len(tail): tail})

    async def read(self, groups: list[int]) -> pa.Table:
        if not self.whole:
            for low, high in formats.row_group_ranges(self.file, groups):
                self.segments[low] = await self.bucket.get(self.obj.key, (low, high))
            self.file = formats.open_parquet(self.size, self.segments, self.obj.key)
        return await asyncio.to_thread(formats.read_groups, self.file, groups, self.obj.key)


def decode_bodies(bodies: Iterable[str], key: str, stats: Counter[str]) -> list[Event]:
    events = []
    for body in bodies:
        try:
            events.append(decode_event(body))
        except EventDecodeError:
            stats["undecodable_events"] += 1
            log.warning("%s: skipped an event that does not decode", key)
    return events


async def object_events(
    bucket: Bucket,
    obj: ObjectInfo,
    query: Query | None,
    after: tuple[datetime, Any] | None,
    stats: Counter[str],
    cache: ObjectCache | None = None,
) -> list[Event]:
    """The events of one object that pass ``query`` (all of them when None) and the cursor."""
    stats["objects_read"] += 1
    if obj.key.endswith(layout.JSONL_GZ):
        data = await (cache.get(bucket, obj) if cache else bucket.get(obj.key))
        events = await asyncio.to_thread(
            lambda: decode_bodies(formats.read_jsonl_gz(data, obj.key), obj.key, stats)
        )
        return [
            e
            for e in events
            if (query is None or query.matches(e)) and (after is None or e.sort_key > after)
        ]
    low = (
        None
        if query is None
        else max(filter(None, (query.start, after and after[0])), default=None)
    )
    parquet = await ParquetObject.open(bucket, obj, cache)
    groups = formats.groups_for(parquet.file, low, query and query.end)
    stats["row_groups_skipped"] += parquet.file.metadata.num_row_groups - len(groups)

    def scan(table: pa.Table) -> list[Event]:  # CPU work, off the event loop
        if query is not None:
            # Rows are sorted by (time, event_id): past the first ``limit`` matches nothing
            # of this object can make the page, so only those are decoded.
            table = formats.filter_table(table, query, after).slice(0, query.limit + 1)
        return decode_bodies(table.column("body").to_pylist(), obj.key, stats)

    events: list[Event] = []
    for index, group in enumerate(groups):
        stats["row_groups_read"] += 1
        events += await asyncio.to_thread(scan, await parquet.read([group]))
        if query is not None and len(events) > query.limit:
            # Row groups follow each other in time: the later ones cannot make the page.
            stats["row_groups_skipped"] += len(groups) - index - 1
            break
    return events


async def partition_events(
    bucket: Bucket,
    prefix: str,
    site_id: str,
    day: date,
    query: Query,
    after: tuple[datetime, Any] | None,
    stats: Counter[str],
    cache: ObjectCache | None = None,
) -> list[Event]:
    """One (site, date) partition's events passing the query, one copy per event_id."""
    start = layout.day_start(day)
    low = max(filter(None, (query.start, after and after[0])), default=None)
    objects = []
    for obj in committed(await bucket.list_objects(layout.date_prefix(prefix, site_id, day))):
        hour = layout.parse_hour(obj.key)
        if hour is not None:
            begins = start + timedelta(hours=hour)
            if not layout.overlaps(begins, begins + timedelta(hours=1), low, query.end):
                stats["objects_skipped"] += 1
                continue
        objects.append(obj)
    limit = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(obj: ObjectInfo) -> list[Event]:
        async with limit:
            try:
                return await object_events(bucket, obj, query, after, stats, cache)
            except formats.CorruptObject as exc:
                # One damaged object must not fail every query that touches its day.
                stats["corrupt_objects"] += 1
                log.warning("skipped a corrupt object: %s", exc)
                return []

    unique: dict[Any, Event] = {}
    for events in await asyncio.gather(*(read(o) for o in objects)):
        for event in events:
            unique.setdefault(event.event_id, event)
    return list(unique.values())
