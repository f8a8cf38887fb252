"""FilesystemQueryAdapter: answers queries by scanning the files a FilesystemEmitter wrote.

There is no index: a query reads every file of the partitions it can touch (its site or all
sites, the UTC days its range overlaps). That suits a site's own copy of recent events, not
years of history.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import attrs

import wafermon
from wafermon import Event, EventDecodeError, Health, Query, QueryAdapter, QueryResult

from . import formats, layout

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
        if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):
            return Health(False, f"root {root} is missing or not a readable directory")
        return Health(True)

    async def query(self, query: Query) -> QueryResult:
        return await asyncio.to_thread(self._query, query)

    def _query(self, query: Query) -> QueryResult:
        after = query.after_cursor()
        undecodable: Counter[Path] = Counter()
        wanted = (
            event
            for event in self._events(query, undecodable)
            if query.matches(event) and (after is None or event.sort_key > after)
        )
        # Bounded memory: only the page is kept, plus one event to tell if another page follows.
        found = heapq.nsmallest(query.limit + 1, wanted, key=lambda e: e.sort_key)
        if undecodable:
            files = ", ".join(f"{path} ({n})" for path, n in undecodable.most_common(5))
            log.warning("skipped %d undecodable lines in %s", undecodable.total(), files)
        page, more = found[: query.limit], len(found) > query.limit
        return QueryResult(page, wafermon.encode_cursor(page[-1]) if more else None)

    def _events(self, query: Query, undecodable: Counter[Path]) -> Iterator[Event]:
        for pdir in self._partitions(query):
            # At-least-once delivery can store an event twice. Every copy lands in the same
            # partition (it follows from the event), so remembering one partition's ids suffices.
            seen: set[UUID] = set()
            decoder = formats.LineDecoder()  # any format, by each file's suffix
            for path, line in layout.partition_lines(pdir, follow_symlinks=False):
                # A last line without its newline is a write in progress (or torn by a crash):
                # it was never acknowledged, so it is skipped without counting as damage.
                if not line.endswith(b"\n") or line.isspace():
                    continue
                try:
                    event = decoder.decode(path, line)
                except EventDecodeError:
                    undecodable[path] += 1
                    continue
                if event is not None and event.event_id not in seen:
                    seen.add(event.event_id)
                    yield event

    def _partitions(self, query: Query) -> Iterator[Path]:
        # Sites are found by listing root, never by joining the query's site_id to a path, so
        # no query can make the adapter read outside root. Symbolic links below root (site and
        # day folders here, event files in partition_lines) are not followed: a link could
        # point anywhere, another site's files or /etc. Root itself may be a link.
        root = self.settings.root
        for site in sorted(root.iterdir()) if root.is_dir() else []:
            if _real_dir(site) and query.site_id in (None, site.name):
                for pdir in sorted(site.iterdir()):
                    if _real_dir(pdir) and layout.day_overlaps(pdir.name, query.start, query.end):
                        yield pdir


def _real_dir(path: Path) -> bool:
    """A directory that is not a symbolic link (logged once per query when it is one)."""
    if path.is_symlink():
        log.warning("%s is a symbolic link: not followed (the root confines reads)", path)
        return False
    return path.is_dir()
