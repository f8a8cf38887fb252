"""POST /v1/query/external (one named source) and GET /v1/data/unified (all of them, merged).

The unified view asks the managed store and every chosen source at once, each with its own
deadline, then merges their pages in ``(time, event_id)`` order and keeps one copy per
event_id. A source that fails or times out is named in ``sources`` with its reason; the
others still answer (200 with partial data). Pagination works across sources because the
cursor is the sort key of the last event returned, which every adapter understands.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from wafermon import Event, Problem, Query, QueryResult, describe, encode_cursor, merge_pages
from wafermon.codec import unstructure_event
from wafermon.errors import FieldValueError
from wafermon.interfaces import MAX_QUERY_LIMIT, STATUSES
from wafermon.pages import decode_cursor

from ..common.bodies import BodyResponse, decode_request
from ..common.errors import ApiError, bad_parameter
from ..common.limits import media_type, read_body
from ..common.openapi import error, json_content, json_request, operation, query_param, ref
from .bodies import EventPage, ExternalQuery, SourceStatus, UnifiedPage
from .openapi import COMMON_ERRORS, EVENT_FILTERS
from .params import Params, parse_time
from .runtime import SourceUnavailable
from .settings import MANAGED

#: Query field -> query parameter of GET /v1/data/unified.
PARAM_OF = {"site_id": "site", "start": "since", "end": "until"}
UNIFIED_LIMIT = 100
TEXT_FIELDS = ("site_id", "app", "entity_type", "entity_id", "status", "business_key", "sub_key")


class SourceFailure(Exception):
    """Why one source gave no page: ``status`` is failed or timed_out."""

    def __init__(self, status: Literal["failed", "timed_out"], reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


async def run_source(gw: Any, name: str, query: Query) -> QueryResult:
    """One source's page within the gateway's source timeout, or SourceFailure saying why."""
    try:
        adapter = gw.store if name == MANAGED else await gw.sources[name].ready()
    except SourceUnavailable as exc:
        raise SourceFailure("failed", str(exc)) from None
    timeout = gw.settings.source_timeout
    try:
        async with asyncio.timeout(timeout):
            return await adapter.query(query)
    except TimeoutError:
        raise SourceFailure("timed_out", f"no answer within {timeout:g}s") from None
    except Exception as exc:  # noqa: BLE001 - one source's failure is reported, not raised
        raise SourceFailure("failed", describe(exc)) from None


# -- POST /v1/query/external --------------------------------------------------------------------


def query_from_json(value: Any, path: str) -> Query:
    """A Query from the JSON object at ``path`` (``QueryFilters``, already type-checked by
    ``decode_request``): times parsed, the cursor decoded; ApiError 400 listing every fault."""
    if not isinstance(value, dict):
        raise ApiError(400, "invalid query", [Problem(path, "expected an object")])
    problems: list[Problem] = []
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if item is None and key != "limit":
            continue
        if key in ("start", "end"):
            if isinstance(item, str):
                try:
                    kwargs[key] = parse_time(item, where)
                except ApiError as exc:
                    problems.extend(exc.problems)
            else:
                problems.append(Problem(where, "expected an ISO 8601 time string"))
        elif key == "limit":
            if type(item) is int and 1 <= item <= MAX_QUERY_LIMIT:
                kwargs[key] = item
            else:
                problems.append(Problem(where, f"expected an integer from 1 to {MAX_QUERY_LIMIT}"))
        elif key in (*TEXT_FIELDS, "cursor"):
            if isinstance(item, str):
                kwargs[key] = item
            else:
                problems.append(Problem(where, "expected a string"))
        else:
            problems.append(Problem(where, "unknown field"))
    if not problems:
        try:
            query = Query(**kwargs)
            query.after_cursor()
            return query
        except FieldValueError as exc:
            problems.append(Problem(f"{path}.{exc.field}", exc.message))
    raise ApiError(400, "invalid query", problems)


@operation(
    "queryExternal",
    "Run a query on one named source (or 'managed').",
    {
        "200": json_content(ref("EventPage"), "One page of the source's events."),
        **COMMON_ERRORS,
        "404": error("No source has this name."),
        "413": error("The body is larger than gateway.max_body_bytes."),
        "415": error("Unsupported Content-Type."),
        "502": error("The source failed; error says why."),
        "504": error("The source did not answer within gateway.source_timeout."),
    },
    request_body=json_request(ExternalQuery),
)
async def external(request: Request) -> Response:
    gw = request.app.state.gateway
    kind = media_type(request)
    if kind not in ("", "application/json"):
        raise ApiError(415, f"unsupported Content-Type {kind!r}; send application/json")
    body = await read_body(request, gw.settings.max_body_bytes)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid JSON", [Problem("$", f"not valid JSON: {exc}")]) from None
    asked = decode_request(data, ExternalQuery)
    name = asked.source
    query = query_from_json(msgspec.to_builtins(asked.query), "$.query")
    if name not in gw.source_names:
        raise ApiError(404, f"no source named {name!r} (sources: {', '.join(gw.source_names)})")
    try:
        result = await run_source(gw, name, query)
    except SourceFailure as exc:
        status = 504 if exc.status == "timed_out" else 502
        raise ApiError(
            status, f"source {name!r} {exc.status.replace('_', ' ')}: {exc.reason}"
        ) from None
    return BodyResponse(
        EventPage(
            events=[unstructure_event(e) for e in result.events], next_cursor=result.next_cursor
        )
    )


# -- GET /v1/data/unified -----------------------------------------------------------------------


def _unified_query(params: Params) -> Query:
    try:
        query = Query(
            start=params.time("since"),
            end=params.time("until"),
            site_id=params.text("site"),
            app=params.text("app"),
            entity_type=params.choice("entity_type", ("job", "subjob")),
            entity_id=params.text("entity_id"),
            status=params.choice("status", tuple(STATUSES)),
            business_key=params.text("business_key"),
            sub_key=params.text("sub_key"),
            parent_id=params.text("parent_id"),
            limit=params.integer("limit", UNIFIED_LIMIT, 1, MAX_QUERY_LIMIT),
            cursor=params.text("cursor"),
        )
        if query.cursor is not None:
            decode_cursor(query.cursor)
    except FieldValueError as exc:
        raise bad_parameter(PARAM_OF.get(exc.field, exc.field), exc.message) from None
    return query


@operation(
    "unified",
    "Events from the managed store and the sources, merged and deduplicated.",
    {
        "200": json_content(ref("UnifiedPage"), "Merged events and each source's status."),
        **COMMON_ERRORS,
    },
    parameters=[
        *EVENT_FILTERS,
        query_param("parent_id", "Only events of the subjobs of this job."),
        query_param(
            "sources",
            "Comma-separated source names (default: managed and every configured source).",
        ),
    ],
)
async def unified(request: Request) -> Response:
    gw = request.app.state.gateway
    allowed = {
        "since", "until", "site", "app", "entity_type", "entity_id", "status",
        "business_key", "sub_key", "parent_id", "limit", "cursor", "sources",
    }  # fmt: skip
    params = Params(request, allowed)
    query = _unified_query(params)
    names = params.names("sources") or gw.source_names
    unknown = [n for n in names if n not in gw.source_names]
    if unknown:
        have = ", ".join(gw.source_names)
        raise bad_parameter("sources", f"unknown source {unknown[0]!r} (sources: {have})")

    outcomes = await asyncio.gather(
        *(run_source(gw, n, query) for n in names), return_exceptions=True
    )
    statuses: dict[str, SourceStatus] = {}
    pages: list[tuple[list[Event], bool]] = []
    after = query.after_cursor()
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, SourceFailure):
            statuses[name] = SourceStatus(status=outcome.status, error=outcome.reason)
        elif isinstance(outcome, BaseException):
            raise outcome  # a bug in the gateway itself, not a source
        else:
            statuses[name] = SourceStatus(status="ok", count=len(outcome.events))
            # Safety net: an adapter that ignores a filter cannot leak events into the page.
            kept = [
                e
                for e in outcome.events
                if query.matches(e) and (after is None or e.sort_key > after)
            ]
            pages.append((kept, outcome.next_cursor is not None))
        gw.metrics.unified_sources.labels(name, statuses[name].status).inc()
    page, more = merge_pages(
        pages, query.limit, key=lambda e: e.sort_key, identity=lambda e: e.event_id
    )
    return BodyResponse(
        UnifiedPage(
            events=[unstructure_event(e) for e in page],
            next_cursor=encode_cursor(page[-1]) if more and page else None,
            sources=statuses,
        )
    )
