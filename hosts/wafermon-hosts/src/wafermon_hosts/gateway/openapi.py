"""The gateway's OpenAPI 3.1 document: component schemas (generated from the answer and
request-body Structs of ``bodies``) and the parameters several routes share;
each handler declares its operation (``@operation``, see ``common.openapi``) and the paths
come from the routes the app serves.

It is served at /openapi.json, a test checks that it describes every route the app has (and
nothing else), and the API fuzz test generates its requests from it. The wire event schema is
the core's JSON Schema itself (OpenAPI 3.1 speaks JSON Schema 2020-12), so the API can never
describe a different event than the codec accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wafermon.interfaces import MAX_QUERY_LIMIT
from wafermon.store import ENTITY_SORTS, MAX_ENTITY_LIMIT

from ..common.bodies import schemas
from ..common.openapi import ERROR_SCHEMAS, event_schemas, retry_later
from ..common.openapi import document as common_document
from ..common.openapi import error as _error
from ..common.openapi import query_param as _query
from ..common.plugin_list import SCHEMAS as PLUGIN_SCHEMAS
from .alerting.openapi import ALERT_SCHEMAS
from .bodies import (
    EntityPage,
    EventPage,
    ExternalQuery,
    Health,
    IngestResponse,
    JobDetail,
    Trend,
    TrendSources,
    UnifiedPage,
)

TIME = {"type": "string", "format": "date-time"}

ENTITY_FILTERS = [
    _query("site", "Only this site."),
    _query("app", "Only this application (app.name)."),
    _query(
        "status", "Current status.", {"type": "string", "enum": ["running", "finished", "failed"]}
    ),
    _query("business_key", "Only entities with this business key."),
    _query("sub_key", "Only entities with this sub key."),
    _query("since", "Start time at or after this ISO 8601 time (UTC if no offset).", TIME),
    _query("until", "Start time before this ISO 8601 time (exclusive).", TIME),
    _query("sort", "Order of the list.", {"type": "string", "enum": list(ENTITY_SORTS)}),
    _query(
        "limit",
        "Page size (default 100).",
        {"type": "integer", "minimum": 1, "maximum": MAX_ENTITY_LIMIT},
    ),
    _query("cursor", "next_cursor of the previous page."),
]

EVENT_FILTERS = [
    _query("since", "Events at or after this ISO 8601 time (UTC if no offset).", TIME),
    _query("until", "Events before this ISO 8601 time (exclusive).", TIME),
    _query("site", "Only this site."),
    _query("app", "Only this application (app.name)."),
    _query("entity_type", "job or subjob.", {"type": "string", "enum": ["job", "subjob"]}),
    _query("entity_id", "Only events of this job or subjob."),
    _query(
        "status",
        "Events reporting this state: running (started, progress), finished or failed.",
        {"type": "string", "enum": ["running", "finished", "failed"]},
    ),
    _query("business_key", "Only events with this business key."),
    _query("sub_key", "Only events with this sub key."),
    _query(
        "limit",
        "Page size (default 100).",
        {"type": "integer", "minimum": 1, "maximum": MAX_QUERY_LIMIT},
    ),
    _query("cursor", "next_cursor of the previous page."),
]

#: 401 and 403 come with every route that needs a token (``common.openapi.AUTH_ERRORS``).
COMMON_ERRORS = {"400": _error("A parameter is invalid; problems[].path names it.")}
STORE_DOWN = {
    "503": retry_later("The managed store is unavailable; retry after Retry-After seconds.")
}

SCHEMAS: dict[str, Any] = {
    **event_schemas(),
    **ERROR_SCHEMAS,
    **ALERT_SCHEMAS,
    **PLUGIN_SCHEMAS,
    **schemas(
        IngestResponse, EntityPage, JobDetail, EventPage, UnifiedPage, Health, TrendSources, Trend
    ),
    **schemas(ExternalQuery),  # request body of queryExternal, with QueryFilters
}


def document(
    routes: Sequence[Any],
    plugin_routes: Sequence[Any] = (),
    scope_of: Callable[[str], str | None] = lambda _path: "read",
) -> dict[str, Any]:
    """The OpenAPI document of these routes (each handler declares its own ``@operation``)."""
    return common_document(
        title="wafermon gateway",
        description="A site's managed event store, external sources and unified view.",
        routes=routes,
        plugin_routes=plugin_routes,
        schemas=SCHEMAS,
        scope_of=scope_of,
    )
