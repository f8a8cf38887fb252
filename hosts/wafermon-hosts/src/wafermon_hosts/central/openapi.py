"""Central's OpenAPI 3.1 document, served at /openapi.json: component schemas (generated from
the answer Structs of ``bodies``) and shared parameters; each handler in ``routes`` declares
its operation (``@operation``).

Entities and events are described by the gateway's own schemas (central passes them on, adding
``site`` to list items), so the two documents cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wafermon.interfaces import MAX_QUERY_LIMIT
from wafermon.store import ENTITY_SORTS, MAX_ENTITY_LIMIT

from ..common.bodies import schemas
from ..common.openapi import ERROR_SCHEMAS
from ..common.openapi import document as common_document
from ..common.openapi import error as _error
from ..common.openapi import query_param as _query
from ..common.plugin_list import SCHEMAS as PLUGIN_SCHEMAS
from ..gateway.alerting.bodies import Alert
from ..gateway.bodies import Entity, SourceStatus
from ..gateway.openapi import EVENT_FILTERS
from ..gateway.openapi import SCHEMAS as GATEWAY_SCHEMAS
from .bodies import TYPES

SITE = _query(
    "site",
    "Comma-separated names of the sites to ask (default: every site). Central's own parameter: "
    "it selects gateways and is not passed on.",
)
TIME = {"type": "string", "format": "date-time"}
#: 401 and 403 come with every route that needs a token (``common.openapi.AUTH_ERRORS``).
COMMON_ERRORS = {
    "400": _error("A parameter is invalid (problems[].path names it), or every site refused it.")
}

ENTITY_PARAMS = [
    SITE,
    _query("app", "Only this application (app.name)."),
    _query(
        "status", "Current status.", {"type": "string", "enum": ["running", "finished", "failed"]}
    ),
    _query("business_key", "Only entities with this business key."),
    _query("sub_key", "Only entities with this sub key."),
    _query("since", "Start time at or after this ISO 8601 time (UTC if no offset).", TIME),
    _query("until", "Start time before this ISO 8601 time (exclusive).", TIME),
    _query("sort", "Order of the merged list.", {"type": "string", "enum": list(ENTITY_SORTS)}),
    _query(
        "limit",
        "Page size (default 100).",
        {"type": "integer", "minimum": 1, "maximum": MAX_ENTITY_LIMIT},
    ),
    _query("cursor", "next_cursor of the previous page (same filters, sort and sites)."),
]
UNIFIED_PARAMS = [
    *[p for p in EVENT_FILTERS if p["name"] not in ("site", "limit")],
    SITE,
    _query(
        "limit",
        "Page size (default 100).",
        {"type": "integer", "minimum": 1, "maximum": MAX_QUERY_LIMIT},
    ),
    _query("sources", "Comma-separated source names, passed to every site."),
]

SCHEMAS: dict[str, Any] = {
    **{k: v for k, v in GATEWAY_SCHEMAS.items() if k == "Event" or k.startswith("Event_")},
    **ERROR_SCHEMAS,
    **PLUGIN_SCHEMAS,
    # What central passes on, described by the gateway's own types.
    **schemas(Entity, Alert, SourceStatus, *TYPES),
}


def document(
    routes: Sequence[Any],
    plugin_routes: Sequence[Any] = (),
    scope_of: Callable[[str], str | None] = lambda _path: "read",
) -> dict[str, Any]:
    """The OpenAPI document of these routes (each handler declares its own ``@operation``)."""
    return common_document(
        title="wafermon central",
        description="Many sites' gateways behind one API: fan-out with per-site timeouts, "
        "partial answers that name missing sites, merged pagination.",
        routes=routes,
        plugin_routes=plugin_routes,
        schemas=SCHEMAS,
        scope_of=scope_of,
    )
