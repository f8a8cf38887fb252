"""The archiver: moves events older than the hot window from the managed store to Parquet in S3.

One object per (site, UTC day) and chunk of ``chunk_rows`` events, in these steps::

    1 upload    archive-{digest}.parquet                 (digest: sha256 of the sorted event ids)
    2 verify    read it back: object sha256, row count, event-id digest
    3 pending   _wafermon/pending/{digest}.json          "this object's rows are leaving the store"
    4 manifest  archive-{digest}.manifest.json           the object now counts for readers
    5 delete    the object's rows from the store, 1000 at a time
    6 done      the pending marker is removed

Only whole UTC days older than ``now - hot_window`` are archived, so an event stays hot for at
least the hot window and at most a day more. Every run first finishes what a crashed run left
(``recover``): a pending marker whose manifest exists means the object is committed, so its
rows are deleted from the store (again; deleting is idempotent); a marker without a manifest
means the object never counted, so it is removed and its rows, all still in the store, are
archived again. A crash before step 3 leaves an object without manifest that readers ignore:
the rerun selects the same rows, makes the same digest and overwrites it. So after any crash
the rerun ends with every event exactly once in store or archive, and nothing leaves the store
that was not read back and verified first. Run one archiver per store.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import attrs
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from wafermon import ByteSize, PermanentError, RetryableError, Seconds
from wafermon.errors import FieldValueError

from . import formats, layout
from .bucket import Bucket, sha256_hex

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "wafermon-archive-manifest"
DELETE_CHUNK = 1000
PARQUET_TYPE = "application/vnd.apache.parquet"


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise FieldValueError(attribute.name, f"must be above 0, got {value!r}")


@attrs.frozen(kw_only=True)
class ArchiveSettings:
    """``archive:`` under an s3 source's ``config``: moving the managed store's old events."""

    hot_window: Seconds = attrs.field(default=Seconds(72 * 3600), validator=_positive)
    chunk_rows: int = attrs.field(default=100_000, validator=_positive)
    row_group_rows: int = attrs.field(default=10_000, validator=_positive)
    multipart_threshold: ByteSize = attrs.field(default=ByteSize(16 * 2**20), validator=_positive)
    compact: bool = True
    target_object_bytes: ByteSize = attrs.field(default=ByteSize(64 * 2**20), validator=_positive)
    compact_lookback: Seconds = attrs.field(default=Seconds(7 * 86400), validator=_positive)
    orphan_grace: Seconds = attrs.field(default=Seconds(3600), validator=_positive)
    retention: Seconds = attrs.field(
        default=Seconds(3650 * 86400), validator=attrs.validators.ge(0)
    )


@attrs.define
class ArchiveReport:
    """What one pass did; ``wafermon archive`` prints it as JSON."""

    archived: int = 0  # events moved out of the store
    objects: int = 0  # archive objects committed
    recovered: int = 0  # markers of an interrupted run finished
    compacted_inputs: int = 0
    compacted_outputs: int = 0
    orphans_removed: int = 0
    quarantined: list[str] = attrs.Factory(list)
    expired_days: int = 0


class VerifyError(RetryableError):
    """An object read back differs from what was written: nothing is deleted, retry later."""


Step = Callable[[str], Awaitable[None] | None]


def manifest_for(
    key: str, site_id: str, day: date, table: pa.Table, data: bytes, ids: Sequence[UUID], by: str
) -> dict[str, Any]:
    times = table.column("time")
    return {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "object": key,
        "site_id": site_id,
        "date": day.isoformat(),
        "rows": table.num_rows,
        "min_time": _iso(pa.compute.min(times).as_py()),
        "max_time": _iso(pa.compute.max(times).as_py()),
        "event_ids_sha256": layout.ids_digest(ids),
        "object_sha256": sha256_hex(data),
        "object_bytes": len(data),
        "created_at": _iso(datetime.now(UTC)),
        "created_by": by,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_object(data: bytes, manifest: dict[str, Any], key: str) -> pa.Table:
    """The object's table if it matches its manifest; VerifyError naming the difference."""
    if sha256_hex(data) != manifest["object_sha256"]:
        raise VerifyError(f"{key}: object sha256 differs from its manifest")
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise VerifyError(f"{key}: unreadable Parquet ({exc})") from None
    if table.num_rows != manifest["rows"]:
        raise VerifyError(f"{key}: {table.num_rows} rows, manifest says {manifest['rows']}")
    ids = [UUID(i) for i in table.column("event_id").to_pylist()]
    if layout.ids_digest(ids) != manifest["event_ids_sha256"]:
        raise VerifyError(f"{key}: event ids differ from its manifest")
    return table


def table_keys(table: pa.Table) -> list[tuple[datetime, UUID]]:
    """(time, event_id) of every row: what the store deletes by."""
    times = table.column("time").to_pylist()
    ids = table.column("event_id").to_pylist()
    return [
        (t if t.tzinfo else t.replace(tzinfo=UTC), UUID(i)) for t, i in zip(times, ids, strict=True)
    ]


class Archiver:
    """One pass: recover, archive whole old days, compact, expire. ``run`` is idempotent."""

    def __init__(
        self,
        store: Any,
        bucket: Bucket,
        prefix: str,
        settings: ArchiveSettings,
        *,
        on_step: Step | None = None,
        now: datetime | None = None,
    ) -> None:
        for method in ("events_before", "delete_events"):
            if not callable(getattr(store, method, None)):
                raise PermanentError(
                    f"store {getattr(store, 'name', store)!r} cannot be archived: it has no "
                    f"{method}() (the sql store has)"
                )
        self.store, self.bucket, self.prefix, self.settings = store, bucket, prefix, settings
        self.on_step = on_step or (lambda _step: None)
        self.now = now
        self.report = ArchiveReport()

    async def _step(self, step: str) -> None:
        """Tell ``on_step`` where the pass is (progress; tests crash or tamper here)."""
        result = self.on_step(step)
        if inspect.isawaitable(result):
            await result

    async def run(self) -> ArchiveReport:
        now = self.now or datetime.now(UTC)
        await self.recover()
        cutoff = layout.day_start((now - timedelta(seconds=self.settings.hot_window)).date())
        after = None
        while rows := await self.store.events_before(
            cutoff, after=after, limit=self.settings.chunk_rows
        ):
            groups: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                groups[(row["site_id"], row["time"].astimezone(UTC).date())].append(row)
            for (site_id, day), group in sorted(groups.items()):
                await self._archive(site_id, day, group)
            last = rows[-1]
            after = (last["time"], last["event_id"])
        if self.settings.compact:
            from .compact import Compactor

            lookback = (cutoff - timedelta(seconds=self.settings.compact_lookback)).date()
            await Compactor(self.bucket, self.prefix, self.settings, self.report).run(
                lookback, cutoff.date(), now
            )
        if self.settings.retention:
            await self.expire((now - timedelta(seconds=self.settings.retention)).date())
        if self.report.archived or self.report.recovered or self.report.quarantined:
            log.info("archive pass: %s", attrs.asdict(self.report))
        return self.report

    async def _archive(self, site_id: str, day: date, rows: list[dict[str, Any]]) -> None:
        # Encoding and checking are CPU work: off the event loop, which serves the gateway.
        table, data = await asyncio.to_thread(self._encode, rows)
        ids = [r["event_id"] for r in rows]
        digest = layout.ids_digest(ids)
        key = layout.archive_key(self.prefix, site_id, day, digest)
        await self.bucket.put(
            key, data, PARQUET_TYPE, multipart_above=self.settings.multipart_threshold
        )
        await self._step("uploaded")
        manifest = manifest_for(key, site_id, day, table, data, ids, "archiver")
        await asyncio.to_thread(check_object, await self.bucket.get(key), manifest, key)
        await self._step("verified")
        marker = layout.control_key(self.prefix, "pending", digest)
        await self.bucket.put(
            marker, orjson.dumps({"object": key}), "application/json", multipart_above=1 << 62
        )
        await self._step("pending")
        await self.bucket.put(
            layout.manifest_key(key),
            orjson.dumps(manifest),
            "application/json",
            multipart_above=1 << 62,
        )
        await self._step("manifest")
        await self._delete_hot([(r["time"], r["event_id"]) for r in rows])
        await self.bucket.delete([marker])
        self.report.objects += 1
        await self._step("done")

    def _encode(self, rows: list[dict[str, Any]]) -> tuple[pa.Table, bytes]:
        table = pa.table(
            {name: [_cell(name, r[name]) for r in rows] for name in formats.SCHEMA.names},
            schema=formats.SCHEMA,
        )
        return table, formats.parquet_bytes(table, self.settings.row_group_rows)

    async def _delete_hot(self, keys: list[tuple[datetime, UUID]]) -> None:
        for start in range(0, len(keys), DELETE_CHUNK):
            self.report.archived += await self.store.delete_events(
                keys[start : start + DELETE_CHUNK]
            )
            await self._step("deleting")

    async def recover(self) -> None:
        """Finish or undo what an interrupted run left, marker by marker."""
        for obj in await self.bucket.list_objects(f"{self.prefix}/{layout.CONTROL}/pending/"):
            raw = await self.bucket.get_or_none(obj.key)
            if raw is None:
                continue
            key = orjson.loads(raw)["object"]
            manifest = await self.bucket.get_or_none(layout.manifest_key(key))
            if manifest is None:
                await self.bucket.delete([key])  # never counted; its rows are all still hot
                log.warning("archive: removed uncommitted %s left by an interrupted run", key)
            else:
                try:
                    data = await self.bucket.get(key)
                    table = await asyncio.to_thread(check_object, data, orjson.loads(manifest), key)
                except VerifyError as exc:
                    # Damaged after it was verified: its rows still in the store are archived
                    # again by this pass; the copy keeps the rest for a person to look at.
                    await quarantine(self.bucket, self.prefix, key, str(exc), self.report)
                else:
                    await self._delete_hot(table_keys(table))
                    log.warning("archive: finished moving %s after an interrupted run", key)
            await self.bucket.delete([obj.key])
            self.report.recovered += 1

    async def expire(self, before: date) -> None:
        """Remove archived days older than ``before`` (archive retention)."""
        from . import reader

        for site_id in await reader.sites(self.bucket, self.prefix):
            for day in await reader.days(self.bucket, self.prefix, site_id):
                if day >= before:
                    break
                objects = await self.bucket.list_objects(
                    layout.date_prefix(self.prefix, site_id, day)
                )
                # Manifests first: an interrupted expiry leaves objects readers ignore.
                keys = sorted(
                    (o.key for o in objects), key=lambda k: not k.endswith(layout.MANIFEST)
                )
                await self.bucket.delete(keys)
                self.report.expired_days += 1


async def remove_objects(bucket: Bucket, keys: list[str]) -> None:
    """Remove objects, their manifests first: an object without manifest no longer counts."""
    await bucket.delete([layout.manifest_key(k) for k in keys if layout.is_archive(k)])
    await bucket.delete(keys)


async def quarantine(
    bucket: Bucket, prefix: str, key: str, why: str, report: ArchiveReport
) -> None:
    """Move a damaged object (and its manifest) under ``_wafermon/quarantine/`` with the reason,
    for a person to look at; it no longer counts, and nothing waits on it."""
    target = layout.quarantine_key(prefix, key)
    await bucket.copy(key, target)
    reason = orjson.dumps({"object": key, "reason": why})
    await bucket.put(target + ".reason.json", reason, "application/json", multipart_above=1 << 62)
    if layout.is_archive(key):
        manifest = layout.manifest_key(key)
        if await bucket.get_or_none(manifest) is not None:
            await bucket.copy(manifest, layout.quarantine_key(prefix, manifest))
    await remove_objects(bucket, [key])
    report.quarantined.append(key)
    log.error("quarantined %s: %s", key, why)


def _cell(name: str, value: Any) -> Any:
    if name == "event_id":
        return str(value)
    if name == "body" and isinstance(value, bytes | bytearray):
        return value.decode()
    return value
