"""S3Emitter: event batches as objects, partitioned by site, date and hour, named by content.

``emit`` returns only once every object of the batch is stored (that is what lets the sidecar
drop the batch). An object's name is a digest of the event ids it holds, so a retried batch
rewrites the same keys: a failure half-way through a batch leaves some objects stored, and the
retry overwrites them instead of adding copies.

Batching: a batch is cut into objects of at most ``max_object_events`` events per partition.
With ``linger`` above zero, concurrent emits (direct mode: many application threads) wait up to
that long to share objects; each still returns only once its events are stored. A lingered
object mixes several callers' events, so its retry after a failure may be cut differently and
store some events twice under other keys: readers deduplicate by event_id, and the compactor
folds such copies away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import attrs
import msgspec
import pyarrow as pa

from wafermon import ByteSize, Emitter, Event, Health, Seconds, ndjson_of
from wafermon.errors import FieldValueError

from . import formats, layout
from .bucket import Bucket, S3Settings

CONTENT_TYPES = {
    layout.JSONL_GZ: "application/x-ndjson",
    layout.PARQUET: "application/vnd.apache.parquet",
}
#: Objects of one emit uploaded at once.
UPLOAD_CONCURRENCY = 4


def _format(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in ("jsonl", "parquet"):
        raise FieldValueError(attribute.name, f"must be jsonl or parquet, got {value!r}")


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise FieldValueError(attribute.name, f"must be above 0, got {value!r}")


@attrs.frozen(kw_only=True)
class EmitterSettings(S3Settings):
    """``config:`` of a ``type: s3`` backend."""

    format: str = attrs.field(default="jsonl", validator=_format)
    max_object_events: int = attrs.field(default=50_000, validator=_positive)
    linger: Seconds = attrs.field(default=Seconds(0.0), validator=attrs.validators.ge(0))
    multipart_threshold: ByteSize = attrs.field(default=ByteSize(16 * 2**20), validator=_positive)
    row_group_rows: int = attrs.field(default=10_000, validator=_positive)


class S3Emitter(Emitter):
    Settings = EmitterSettings
    settings: EmitterSettings

    def __init__(self, name: str, settings: EmitterSettings) -> None:
        super().__init__(name, settings)
        self.bucket = Bucket(settings)
        self._pending: list[Event] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self.objects_written = 0

    async def start(self) -> None:
        await self.bucket.open()

    async def close(self) -> None:
        if self._pending:
            self._flush()
        await asyncio.gather(*self._flushes, return_exceptions=True)
        await self.bucket.close()

    async def health(self) -> Health:
        return await self.bucket.health()

    def stats(self) -> dict[str, float]:
        return {"objects_written": float(self.objects_written)}

    async def emit(self, batch: Sequence[Event]) -> None:
        if not batch:
            return
        if self.settings.linger <= 0:
            await self.write(batch)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._pending.extend(batch)
        self._waiters.append(waiter)
        if len(self._pending) >= self.settings.max_object_events:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.settings.linger, self._flush)
        await waiter

    def _flush(self) -> None:
        """Write what is pending in a task of its own, then settle every waiter with its result."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        events, waiters = self._pending, self._waiters
        self._pending, self._waiters = [], []

        async def run() -> None:
            try:
                await self.write(events)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting emit
                for w in waiters:
                    if not w.done():
                        w.set_exception(exc)
                return
            for w in waiters:
                if not w.done():
                    w.set_result(None)

        task = asyncio.get_running_loop().create_task(run())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def write(self, events: Sequence[Event]) -> list[str]:
        """Store ``events`` as objects; returns their keys. Raises RetryableError."""
        jobs = await asyncio.to_thread(self._objects, events)
        limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def upload(site_id: str, hour: datetime, digest: str, encode) -> str:
            async with limit:
                data, ext = await asyncio.to_thread(encode)
                key = layout.emitted_key(self.settings.prefix, site_id, hour, digest, ext)
                await self.bucket.put(
                    key,
                    data,
                    CONTENT_TYPES[ext],
                    multipart_above=self.settings.multipart_threshold,
                )
                self.objects_written += 1
                return key

        tasks = [asyncio.ensure_future(upload(*job)) for job in jobs]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:  # one failed: stop the others, the retry rewrites them all
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)

    def _objects(self, events: Sequence[Event]) -> list[tuple[str, datetime, str, Any]]:
        """(site, hour, digest, encode) per object: one copy per event_id, at most
        ``max_object_events`` each. JSON Lines objects are cut from the batch's NDJSON as it
        came (no Event is built for a batch that arrived as bytes); Parquet needs the events."""
        size = self.settings.max_object_events
        jobs = []
        if self.settings.format == "jsonl":
            for (site_id, hour), lines in sorted(lines_by_hour(ndjson_of(events)).items()):
                for start in range(0, len(lines), size):
                    chunk = lines[start : start + size]
                    digest = layout.ids_digest(event_id for event_id, _ in chunk)
                    body = b"".join(line for _, line in chunk)
                    jobs.append(
                        (
                            site_id,
                            hour,
                            digest,
                            lambda b=body: (formats.gzip_bytes(b), layout.JSONL_GZ),
                        )
                    )
            return jobs
        groups: dict[tuple[str, datetime], dict] = defaultdict(dict)
        for event in events:  # one copy per event_id: a repeat in the batch is not stored twice
            hour = event.time.replace(minute=0, second=0, microsecond=0)
            groups[(event.site_id, hour)].setdefault(event.event_id, event)
        for (site_id, hour), unique in sorted(groups.items()):
            group = sorted(unique.values(), key=lambda e: e.sort_key)
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                digest = layout.ids_digest(e.event_id for e in chunk)
                jobs.append((site_id, hour, digest, lambda c=chunk: self._parquet(c)))
        return jobs

    def _parquet(self, chunk: list[Event]) -> tuple[bytes, str]:
        table = pa.table(formats.rows_of_events(chunk), schema=formats.SCHEMA)
        return formats.parquet_bytes(table, self.settings.row_group_rows), layout.PARQUET


class _Place(msgspec.Struct):
    """The fields that choose an event's object; msgspec skips the rest of the line."""

    event_id: str
    site_id: str
    time: str


_places = msgspec.json.Decoder(_Place).decode_lines


def lines_by_hour(ndjson: bytes) -> dict[tuple[str, datetime], list[tuple[UUID, bytes]]]:
    """Validated NDJSON split by (site, UTC hour), first copy of each event_id, each line with
    its id and newline, in the order received. Times on the wire are UTC (the schema says so),
    so the hour is the text's ``YYYY-MM-DDTHH``."""
    groups: dict[tuple[str, datetime], list[tuple[UUID, bytes]]] = defaultdict(list)
    hours: dict[str, datetime] = {}
    seen: set[str] = set()
    lines = ndjson.split(b"\n")[:-1]  # each line ends in a newline
    for place, line in zip(_places(ndjson), lines, strict=True):
        if place.event_id in seen:
            continue
        seen.add(place.event_id)
        text = place.time[:13]
        hour = hours.get(text) or hours.setdefault(
            text, datetime.fromisoformat(text[:10]).replace(hour=int(text[11:13]), tzinfo=UTC)
        )
        groups[(place.site_id, hour)].append((UUID(place.event_id), line + b"\n"))
    return groups
