"""FilesystemQueryAdapter: answers queries by scanning the files a FilesystemEmitter wrote.

There is no index: the adapter reads every file of the partitions a query can touch (its site
or all sites, the UTC days overlapping its time range), so it suits a site's own backup copy,
not years of history. Memory stays bounded by the page size, not by the data scanned.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import attrs

from wafermon import (
    Event,
    EventDecodeError,
    Health,
    Query,
    QueryAdapter,
    QueryResult,
    decode_event,
    encode_cursor,
)

from . import layout

log = logging.getLogger(__name__)


@attrs.frozen
class AdapterSettings:
    """``config:`` of a ``type: filesystem`` source."""

    root: Path


class FilesystemQueryAdapter(QueryAdapter):
    Settings = AdapterSettings
    settings: AdapterSettings

    async def health(self) -> Health:
        root = self.settings.root
        if not root.is_dir():
            return Health(False, f"root {root} does not exist or is not a directory")
        if not os.access(root, os.R_OK | os.X_OK):
            return Health(False, f"root {root} is not readable")
        return Health(True)

    async def query(self, query: Query) -> QueryResult:
        return await asyncio.to_thread(self._query, query)

    def _query(self, query: Query) -> QueryResult:
        after = query.after_cursor()
        undecodable: Counter[Path] = Counter()
        candidates = (
            event
            for event in self._events(query, undecodable)
            if query.matches(event) and (after is None or event.sort_key > after)
        )
        # One more than the limit tells whether there is a next page.
        found = _smallest_unique(candidates, query.limit + 1)
        if undecodable:
            files = ", ".join(f"{path} ({n})" for path, n in undecodable.most_common(5))
            log.warning("skipped %d undecodable lines in %s", undecodable.total(), files)
        page = found[: query.limit]
        more = len(found) > query.limit
        return QueryResult(page, encode_cursor(page[-1]) if more else None)

    def _events(self, query: Query, undecodable: Counter[Path]) -> Iterator[Event]:
        for pdir in self._partitions(query):
            for path, file in layout.open_event_files(pdir):
                for line in layout.read_lines(path, file):
                    # A last line without its newline is a write still in progress (or torn by
                    # a crash): it was never acknowledged, so it is not counted as damage.
                    if not line.endswith(b"\n") or not line.strip():
                        continue
                    try:
                        yield decode_event(line)
                    except EventDecodeError:
                        undecodable[path] += 1

    def _partitions(self, query: Query) -> Iterator[Path]:
        """The partition directories that can hold events the query asks for.

        Sites are found by listing the root, never by joining the query's site_id to a path, so
        no query can make the adapter read outside its root.
        """
        root = self.settings.root
        if not root.is_dir():
            return
        for site in sorted(root.iterdir()):
            if not site.is_dir() or (query.site_id is not None and site.name != query.site_id):
                continue
            for pdir in sorted(site.iterdir()):
                day = _parse_day(pdir.name)
                if (
                    day is not None
                    and pdir.is_dir()
                    and layout.day_overlaps(day, query.start, query.end)
                ):
                    yield pdir


def _parse_day(name: str) -> date | None:
    """The date a partition directory is named after, or None for anything else."""
    try:
        day = date.fromisoformat(name)
    except ValueError:
        return None
    return day if day.isoformat() == name else None  # not "20261128" or "2026-W48-1"


class _Largest:
    """Heap entry ordered backwards, so heapq's min-heap keeps the largest event on top."""

    __slots__ = ("event", "key")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.key = event.sort_key

    def __lt__(self, other: _Largest) -> bool:
        return self.key > other.key


def _smallest_unique(events: Iterable[Event], n: int) -> list[Event]:
    """The ``n`` smallest events by sort key, each event_id once, holding at most ``n`` events.

    This is heapq.nsmallest plus dedupe: at-least-once delivery can store an event twice, and a
    copy must not take the place of another event. Copies share their sort key, so a copy is
    either already in the heap (caught by ``ids``) or too large to enter it.
    """
    heap: list[_Largest] = []
    ids = set()
    for event in events:
        if event.event_id in ids:
            continue
        if len(heap) < n:
            heapq.heappush(heap, _Largest(event))
        elif event.sort_key < heap[0].key:
            ids.discard(heapq.heapreplace(heap, _Largest(event)).event.event_id)
        else:
            continue
        ids.add(event.event_id)
    return sorted((entry.event for entry in heap), key=lambda e: e.sort_key)
