"""The compactor: merges the small objects of a closed day into few large archive objects.

A partition (site, day) is closed once the archiver has moved that day out of the store. Its
objects smaller than half of ``target_object_bytes`` (archive objects with a manifest, and the
emitter's objects) are merged in groups of up to ``target_object_bytes``, one copy per
event_id, sorted by time. Steps, each safe to interrupt::

    1 upload + verify     the merged archive object
    2 marker              _wafermon/compact/{digest}.json naming the object and what it replaces
    3 manifest            the merged object now counts (readers see both; they deduplicate)
    4 delete replaced     manifests first, then the objects
    5 done                the marker is removed

``recover`` finishes step 4 for a marker whose manifest exists and undoes step 1 for one
without. An input that does not match its manifest or does not parse is quarantined (copied
under ``_wafermon/quarantine/`` and removed), counted in the report and logged, and the rest of
the partition is compacted without it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from uuid import UUID

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from wafermon import EventDecodeError, decode_event

from . import formats, layout, reader
from .archive import (
    PARQUET_TYPE,
    ArchiveReport,
    ArchiveSettings,
    VerifyError,
    check_object,
    manifest_for,
    quarantine,
    remove_objects,
)
from .bucket import Bucket, ObjectInfo

log = logging.getLogger(__name__)
#: Input objects fetched at once while merging.
READ_CONCURRENCY = 8


class Compactor:
    def __init__(
        self, bucket: Bucket, prefix: str, settings: ArchiveSettings, report: ArchiveReport
    ) -> None:
        self.bucket, self.prefix, self.settings, self.report = bucket, prefix, settings, report

    async def run(self, first: date, end: date, now: datetime) -> None:
        """Compact the closed days in ``[first, end)`` of every site."""
        await self.recover()
        for site_id in await reader.sites(self.bucket, self.prefix):
            for day in await reader.days(self.bucket, self.prefix, site_id, first):
                if first <= day < end:
                    await self.partition(site_id, day, now)

    async def partition(self, site_id: str, day: date, now: datetime) -> None:
        objects = await self.bucket.list_objects(layout.date_prefix(self.prefix, site_id, day))
        data = reader.committed(objects)
        counted = {o.key for o in data}
        grace = timedelta(seconds=self.settings.orphan_grace)
        orphans = [
            o.key
            for o in objects
            if layout.is_data(o.key)
            and o.key not in counted
            and o.last_modified is not None
            and now - o.last_modified > grace
        ]
        if orphans:  # uploads whose run died before the pending marker; their rows stayed hot
            await self.bucket.delete(orphans)
            self.report.orphans_removed += len(orphans)
        target = self.settings.target_object_bytes
        small = sorted((o for o in data if o.size < target // 2), key=lambda o: o.key)
        groups: list[list[ObjectInfo]] = [[]]
        for obj in small:
            if groups[-1] and sum(o.size for o in groups[-1]) + obj.size > target:
                groups.append([])
            groups[-1].append(obj)
        for group in groups:
            if len(group) >= 2:
                await self.merge(site_id, day, group)

    async def merge(self, site_id: str, day: date, inputs: list[ObjectInfo]) -> None:
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(obj: ObjectInfo) -> pa.Table | None:
            async with limit:
                return await self._read(obj)

        read_back = await asyncio.gather(*(read(o) for o in inputs))
        tables = [t for t in read_back if t is not None]
        used = [o.key for o, t in zip(inputs, read_back, strict=True) if t is not None]
        if len(used) < 2:
            return
        merged, uuids, body = await asyncio.to_thread(self._merge, tables)
        digest = layout.ids_digest(uuids)
        key = layout.archive_key(self.prefix, site_id, day, digest)
        await self.bucket.put(
            key, body, PARQUET_TYPE, multipart_above=self.settings.multipart_threshold
        )
        manifest = manifest_for(key, site_id, day, merged, body, uuids, "compactor")
        await asyncio.to_thread(check_object, await self.bucket.get(key), manifest, key)
        replaced = [k for k in used if k != key]
        marker = layout.control_key(self.prefix, "compact", digest)
        await self.bucket.put(
            marker,
            orjson.dumps({"object": key, "replaces": replaced}),
            "application/json",
            multipart_above=1 << 62,
        )
        await self.bucket.put(
            layout.manifest_key(key),
            orjson.dumps(manifest),
            "application/json",
            multipart_above=1 << 62,
        )
        await self._remove(replaced)
        await self.bucket.delete([marker])
        self.report.compacted_inputs += len(used)
        self.report.compacted_outputs += 1

    def _merge(self, tables: list[pa.Table]) -> tuple[pa.Table, list[UUID], bytes]:
        """One table, one row per event_id, sorted; its ids; its Parquet bytes (CPU work)."""
        merged = pa.concat_tables(tables)
        first_seen: dict[str, int] = {}
        for index, event_id in enumerate(merged.column("event_id").to_pylist()):
            first_seen.setdefault(event_id, index)
        merged = formats.sorted_table(merged.take(sorted(first_seen.values())))
        body = formats.parquet_bytes(merged, self.settings.row_group_rows)
        return merged, [UUID(i) for i in first_seen], body

    async def _remove(self, keys: list[str]) -> None:
        await remove_objects(self.bucket, keys)

    async def _read(self, obj: ObjectInfo) -> pa.Table | None:
        """An input as a table in the archive schema; None (quarantined) if it is damaged."""
        data = await self.bucket.get(obj.key)
        manifest = None
        if layout.is_archive(obj.key):
            manifest = await self.bucket.get_or_none(layout.manifest_key(obj.key))
            if manifest is None:
                return None  # removed meanwhile (another pass); not ours to merge
        try:
            return await asyncio.to_thread(self._parse, obj.key, data, manifest)
        except (
            VerifyError,
            formats.CorruptObject,
            EventDecodeError,
            pa.ArrowException,
            OSError,
            ValueError,
        ) as exc:
            await quarantine(self.bucket, self.prefix, obj.key, str(exc), self.report)
            return None

    @staticmethod
    def _parse(key: str, data: bytes, manifest: bytes | None) -> pa.Table:
        if manifest is not None:
            return check_object(data, orjson.loads(manifest), key)
        if key.endswith(layout.PARQUET):
            return pq.read_table(pa.BufferReader(data)).cast(formats.SCHEMA)
        events = [decode_event(line) for line in formats.read_jsonl_gz(data, key)]
        return pa.table(formats.rows_of_events(events), schema=formats.SCHEMA)

    async def recover(self) -> None:
        for obj in await self.bucket.list_objects(f"{self.prefix}/{layout.CONTROL}/compact/"):
            raw = await self.bucket.get_or_none(obj.key)
            if raw is None:
                continue
            marker = orjson.loads(raw)
            if await self.bucket.get_or_none(layout.manifest_key(marker["object"])) is None:
                await self.bucket.delete([marker["object"]])
            else:
                await self._remove(marker["replaces"])
            await self.bucket.delete([obj.key])
            self.report.recovered += 1
