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
from datetime import datetime

import attrs
import pyarrow as pa

from wafermon import ByteSize, Emitter, Event, Health, Seconds
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
        groups: dict[tuple[str, datetime], dict] = defaultdict(dict)
        for event in events:  # one copy per event_id: a repeat in the batch is not stored twice
            hour = event.time.replace(minute=0, second=0, microsecond=0)
            groups[(event.site_id, hour)].setdefault(event.event_id, event)
        jobs = []
        size = self.settings.max_object_events
        for (site_id, hour), unique in sorted(groups.items()):
            group = sorted(unique.values(), key=lambda e: e.sort_key)
            for start in range(0, len(group), size):
                jobs.append((site_id, hour, group[start : start + size]))
        limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def upload(site_id: str, hour: datetime, chunk: list[Event]) -> str:
            async with limit:
                data, ext = await asyncio.to_thread(self._encode, chunk)
                digest = layout.ids_digest(e.event_id for e in chunk)
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

    def _encode(self, chunk: list[Event]) -> tuple[bytes, str]:
        if self.settings.format == "parquet":
            table = pa.table(formats.rows_of_events(chunk), schema=formats.SCHEMA)
            return formats.parquet_bytes(table, self.settings.row_group_rows), layout.PARQUET
        return formats.jsonl_gz(chunk), layout.JSONL_GZ
