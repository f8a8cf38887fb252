"""The gateway's answer bodies (``common.bodies``): the handlers build these Structs and the
OpenAPI components are generated from them. Central documents what it passes on with the
same types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from wafermon.interfaces import MAX_QUERY_LIMIT, TREND_STATS
from wafermon.store import EntityState

from ..common.bodies import Body, EventJSON, IngestResult, RequestBody

Status = Literal["running", "finished", "failed"]


class IngestResponse(Body):
    """Counts, and one result per event that was not accepted, in input order."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[IngestResult]


class EntityError(Body):
    type: str
    message: str
    stack: str | None


class Entity(Body):
    """Current state of a job or subjob, derived from its events."""

    entity_type: Literal["job", "subjob"]
    entity_id: str
    site_id: str
    app: str
    app_version: str | None
    parent_id: str | None
    business_key: str | None
    sub_key: str | None
    status: Status
    started_at: datetime | None
    first_seen_at: datetime
    finished_at: datetime | None
    updated_at: datetime
    duration_s: float | None
    cpu_user_s: float | None
    cpu_system_s: float | None
    mem_max_mb: float | None
    progress: float | None
    error: EntityError | None
    metadata: dict[str, Any]
    event_count: int
    start_time: Annotated[datetime, Meta(description="started_at, else first_seen_at.")]

    @classmethod
    def of(cls, state: EntityState) -> Entity:
        """The public fields of a job or subjob (not the merge stamps), plus ``start_time``
        (what lists sort by)."""
        return msgspec.convert(state, cls, from_attributes=True)


class EntityPage(Body):
    items: list[Entity]
    next_cursor: str | None


class JobDetail(Body):
    job: Entity
    subjobs: list[Entity]
    events: list[EventJSON]


class EventPage(Body):
    events: list[EventJSON]
    next_cursor: str | None


class SourceStatus(Body):
    status: Literal["ok", "failed", "timed_out"]
    count: Annotated[int | UnsetType, Meta(description="Events the source returned (if ok).")] = (
        UNSET
    )
    error: Annotated[str | UnsetType, Meta(description="Why it gave no page (if not ok).")] = UNSET


class UnifiedPage(Body):
    events: list[EventJSON]
    next_cursor: str | None
    sources: dict[str, SourceStatus]


class StoreCheck(Body):
    name: str
    type: str
    ok: bool
    detail: str


class Check(Body):
    ok: bool
    detail: str


class StreamCheck(Body):
    """A stream this gateway consumes (gateway.streams, docs/scale-out.md)."""

    type: str
    ok: bool
    detail: str
    lag: dict[str, int]
    lag_total: int
    committed_messages: int
    dead_lettered: int
    events: dict[str, int]


class Health(Body):
    """Without the read token only status; the rest needs the read scope."""

    status: Literal["ok", "degraded", "down"]
    site_id: str | UnsetType = UNSET
    store: StoreCheck | UnsetType = UNSET
    sources: dict[str, Check] | UnsetType = UNSET
    streams: dict[str, StreamCheck] | UnsetType = UNSET


class TrendSourceInfo(Body):
    metrics: Annotated[dict[str, str], Meta(description="Metric name -> unit (Count, Seconds...).")]
    stats: list[str]


class TrendSources(Body):
    sources: Annotated[dict[str, TrendSourceInfo], Meta(description="Trend sources by name.")]


class Point(Body):
    time: datetime
    value: float


class Series(Body):
    name: Annotated[str, Meta(description="The app, or the site's total.")]
    app: str | None
    points: Annotated[
        list[Point], Meta(description="Oldest first; a period without data has none.")
    ]


class Trend(Body):
    source: str
    metric: str
    unit: Annotated[str, Meta(description="The metric's unit (Count, Seconds...).")]
    stat: Annotated[str, Meta(extra_json_schema={"enum": list(TREND_STATS)})]
    period: Annotated[int, Meta(description="Seconds per point.")]
    site: str
    since: datetime
    until: datetime
    series: list[Series]


# -- request bodies ----------------------------------------------------------------------------

Time = Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})]
Text = str | None


class QueryFilters(RequestBody):
    """Filters combine with AND; start inclusive, end exclusive (UTC if no offset)."""

    start: Time = None
    end: Time = None
    site_id: Text = None
    app: Text = None
    entity_type: Literal["job", "subjob"] | None = None
    entity_id: Text = None
    status: Status | None = None
    business_key: Text = None
    sub_key: Text = None
    limit: Annotated[int, Meta(ge=1, le=MAX_QUERY_LIMIT)] | UnsetType = UNSET
    cursor: Annotated[Text, Meta(description="next_cursor of the previous page.")] = None


class ExternalQuery(RequestBody):
    """POST /v1/query/external: which source, and the query it runs."""

    source: Annotated[str, Meta(description="A source's name, or managed.")]
    query: QueryFilters = msgspec.field(default_factory=QueryFilters)
