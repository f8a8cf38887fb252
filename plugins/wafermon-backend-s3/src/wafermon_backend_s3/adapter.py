"""S3QueryAdapter: answers queries from the objects the emitter and the archiver wrote.

It lists only the partitions a query can touch (its site, or every ``site=`` prefix; the dates
its range and cursor leave), walks them in date order and stops once a page is full, since a
later date only holds later events. Within a partition it skips emitter objects of hours
outside the range and Parquet row groups whose ``time`` statistics are outside it; the other
filters are applied in the Arrow scan before any event is decoded.

A source with an ``archive:`` section is also the gateway's archive (see ``archive``).
"""

from __future__ import annotations

import heapq
from collections import Counter
from datetime import UTC
from typing import Any

import attrs

from wafermon import Health, Query, QueryAdapter, QueryResult, encode_cursor
from wafermon.events import SITE_ID_PATTERN

from . import layout, reader
from .archive import ArchiveReport, ArchiveSettings
from .bucket import Bucket, S3Settings


@attrs.frozen(kw_only=True)
class AdapterSettings(S3Settings):
    """``config:`` of a ``type: s3`` source; ``archive`` makes it the gateway's archive."""

    archive: ArchiveSettings | None = None


class S3QueryAdapter(QueryAdapter):
    Settings = AdapterSettings
    settings: AdapterSettings

    def __init__(self, name: str, settings: AdapterSettings) -> None:
        super().__init__(name, settings)
        self.bucket = Bucket(settings)
        self.counters: Counter[str] = Counter()
        self.cache = reader.ObjectCache()

    async def start(self) -> None:
        await self.bucket.open()

    async def close(self) -> None:
        await self.bucket.close()

    async def health(self) -> Health:
        return await self.bucket.health()

    def stats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.counters.items()}

    async def query(self, query: Query) -> QueryResult:
        prefix = self.settings.prefix
        after = query.after_cursor()
        low = max(filter(None, (query.start, after and after[0])), default=None)
        if query.site_id is not None and not SITE_ID_PATTERN.fullmatch(query.site_id):
            return QueryResult([])  # no object can have it (and no key is built from it)
        site_ids = (
            [query.site_id]
            if query.site_id is not None
            else await reader.sites(self.bucket, prefix)
        )
        first = low.astimezone(UTC).date() if low is not None else None
        partitions = []
        for site_id in site_ids:
            for day in await reader.days(self.bucket, prefix, site_id, first):
                start = layout.day_start(day)
                if layout.overlaps(start, start + layout.DAY, low, query.end):
                    partitions.append((day, site_id))
                else:
                    self.counters["partitions_skipped"] += 1
        found: list[Any] = []
        partitions.sort()
        for index, (day, site_id) in enumerate(partitions):
            self.counters["partitions_read"] += 1
            events = await reader.partition_events(
                self.bucket, prefix, site_id, day, query, after, self.counters, self.cache
            )
            found = heapq.nsmallest(query.limit + 1, [*found, *events], key=lambda e: e.sort_key)
            following = partitions[index + 1 : index + 2]
            if len(found) > query.limit and (not following or following[0][0] > day):
                break  # a full page, and every later partition holds only later events
        page = found[: query.limit]
        more = len(found) > query.limit
        return QueryResult(page, encode_cursor(page[-1]) if more else None)

    # -- the archive (gateway background task and ``wafermon archive``) ------------------------

    @property
    def archives_store(self) -> bool:
        """True when this source is configured as the managed store's archive."""
        return self.settings.archive is not None

    async def archive(self, store: Any, **options: Any) -> int:
        """One archive pass over ``store`` (recover, archive, compact, expire); events moved."""
        return (await self.archive_report(store, **options)).archived

    async def archive_report(self, store: Any, **options: Any) -> ArchiveReport:
        from .archive import Archiver

        if self.settings.archive is None:
            raise RuntimeError(f"source {self.name!r} has no archive: section")
        archiver = Archiver(
            store, self.bucket, self.settings.prefix, self.settings.archive, **options
        )
        return await archiver.run()
