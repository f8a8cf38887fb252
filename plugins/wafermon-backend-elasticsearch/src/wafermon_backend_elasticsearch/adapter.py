"""ElasticsearchQueryAdapter: answers a Query from the daily indices, in the unified format.

Every Query filter becomes a ``bool.filter`` clause on a keyword field (filters do not score,
and ES caches them); ``status`` becomes the set of kinds it stands for. Pages are cut by
``search_after`` on (time, event_id), the order every wafermon source uses, inside one point in
time: one ``query`` call that needs several ES pages sees one consistent snapshot, and the
wafermon cursor (the last event's sort key) continues exactly where the page ended, even after
the point in time has expired.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import attrs
from elasticsearch import ApiError, NotFoundError, TransportError

from wafermon import (
    EventDecodeError,
    Health,
    Query,
    QueryAdapter,
    QueryResult,
    RetryableError,
    encode_cursor,
    structure_event,
)
from wafermon.interfaces import STATUSES

from .settings import ConnectionSettings, cluster_health, make_client

log = logging.getLogger(__name__)
_NANOS = "strict_date_optional_time_nanos"
# event_id is a keyword; lower-case hex UUID strings sort like the UUIDs themselves.
_SORT = [{"time": {"order": "asc", "format": _NANOS}}, {"event_id": {"order": "asc"}}]


@attrs.frozen(kw_only=True)
class AdapterSettings(ConnectionSettings):
    """``config:`` of a ``type: elasticsearch`` source."""

    page_size: int = 1000  # hits per ES request; a Query's limit may take several
    keep_alive: str = "1m"  # point in time kept this long between two ES pages


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def translate(query: Query) -> dict[str, Any]:
    """The ES query for every filter of ``query`` (not the cursor)."""
    filters: list[dict[str, Any]] = []
    if query.start is not None or query.end is not None:
        bounds: dict[str, str] = {"format": _NANOS}
        if query.start is not None:
            bounds["gte"] = _iso(query.start)
        if query.end is not None:
            bounds["lt"] = _iso(query.end)
        filters.append({"range": {"time": bounds}})
    for field, value in (
        ("site_id", query.site_id),
        ("app.name", query.app),
        ("entity.type", query.entity_type),
        ("entity.id", query.entity_id),
        ("entity.parent_id", query.parent_id),
        ("entity.business_key", query.business_key),
        ("entity.sub_key", query.sub_key),
    ):
        if value is not None:
            filters.append({"term": {field: value}})
    if query.status is not None:
        filters.append({"terms": {"kind": sorted(STATUSES[query.status])}})
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}


class ElasticsearchQueryAdapter(QueryAdapter):
    Settings = AdapterSettings
    settings: AdapterSettings

    def __init__(self, name: str, settings: AdapterSettings) -> None:
        super().__init__(name, settings)
        self._client = make_client(settings)

    async def close(self) -> None:
        await self._client.close()

    async def health(self) -> Health:
        """Whether the cluster answers (the gateway's /v1/healthz lists each source's)."""
        return await cluster_health(self._client)

    async def query(self, query: Query) -> QueryResult:
        after = query.after_cursor()
        search_after = None if after is None else [_iso(after[0]), str(after[1])]
        wanted = query.limit + 1  # one more than asked tells whether a next page exists
        try:
            pit = await self._client.open_point_in_time(
                index=f"{self.settings.index_prefix}-*",
                keep_alive=self.settings.keep_alive,
                ignore_unavailable=True,
            )
        except NotFoundError:
            return QueryResult([])
        except (ApiError, TransportError) as exc:
            raise RetryableError(f"Elasticsearch: {exc}") from exc
        pit_id = pit["id"]
        sources: list[dict] = []
        try:
            while len(sources) < wanted:
                size = min(self.settings.page_size, wanted - len(sources))
                answer = await self._client.search(
                    pit={"id": pit_id, "keep_alive": self.settings.keep_alive},
                    query=translate(query),
                    sort=_SORT,
                    search_after=search_after,
                    size=size,
                    track_total_hits=False,
                )
                pit_id = answer.get("pit_id", pit_id)
                hits = answer["hits"]["hits"]
                sources.extend(hit["_source"] for hit in hits)
                if len(hits) < size:
                    break
                search_after = hits[-1]["sort"]
        except (ApiError, TransportError) as exc:
            raise RetryableError(f"Elasticsearch: {exc}") from exc
        finally:
            with contextlib.suppress(ApiError, TransportError):  # it expires after keep_alive
                await self._client.close_point_in_time(id=pit_id)
        events = list(self._events(sources))
        more = len(events) > query.limit
        events = events[: query.limit]
        return QueryResult(events, encode_cursor(events[-1]) if more else None)

    def _events(self, sources: list[dict]):
        for source in sources:
            try:
                yield structure_event(source)
            except EventDecodeError as exc:  # a document wafermon did not write
                log.warning("%s: skipped a document that is not an event: %s", self.name, exc)
