"""Central's OpenAPI 3.1 description, served at /openapi.json.

Entities and events are described by the gateway's own schemas (central passes them on, adding
``site`` to list items), so the two documents cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from wafermon.interfaces import MAX_QUERY_LIMIT
from wafermon.store import ENTITY_SORTS, MAX_ENTITY_LIMIT

from ..common.openapi import ERROR_SCHEMAS, METRICS_PATH, OPENAPI_PATH, open_get
from ..common.openapi import document as common_document
from ..common.openapi import error as _error
from ..common.openapi import json_content as _json
from ..common.openapi import ref as _ref
from ..gateway.openapi import EVENT_FILTERS
from ..gateway.openapi import SCHEMAS as GATEWAY_SCHEMAS


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string", "minLength": 1},
    }


SITE = _query(
    "site",
    "Comma-separated names of the sites to ask (default: every site). Central's own parameter: "
    "it selects gateways and is not passed on.",
)
TIME = {"type": "string", "format": "date-time"}
READ_AUTH = [{"bearer": []}]
COMMON_ERRORS = {
    "400": _error("A parameter is invalid (problems[].path names it), or every site refused it."),
    "401": _error("A read token is configured and the request carries none."),
    "403": _error("The token does not grant the read scope."),
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

SITE_STATUS = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {
            "type": "string",
            "enum": ["ok", "rejected", "failed", "timed_out", "done"],
            "description": "done: a cursor had already exhausted this site's list.",
        },
        "latency_ms": {"type": "number"},
        "cached": {"type": "boolean"},
        "count": {"type": "integer", "description": "Items or events this site contributed."},
        "error": {"type": "string", "description": "Why the site is missing (if it is)."},
        "sources": {
            "type": "object",
            "description": "/v1/data/unified: the site's own per-source statuses.",
            "additionalProperties": _ref("SourceStatus"),
        },
    },
}

SCHEMAS: dict[str, Any] = {
    **{k: v for k, v in GATEWAY_SCHEMAS.items() if k == "Event" or k.startswith("Event_")},
    **ERROR_SCHEMAS,
    "Entity": GATEWAY_SCHEMAS["Entity"],
    "SourceStatus": GATEWAY_SCHEMAS["SourceStatus"],
    "SiteStatus": SITE_STATUS,
    "SiteEntity": {
        "allOf": [
            _ref("Entity"),
            {
                "type": "object",
                "required": ["site"],
                "properties": {"site": {"type": "string", "description": "The site's name."}},
            },
        ]
    },
    "MergedPage": {
        "type": "object",
        "required": ["items", "next_cursor", "sites"],
        "properties": {
            "items": {"type": "array", "items": _ref("SiteEntity")},
            "next_cursor": {"type": ["string", "null"]},
            "sites": {"type": "object", "additionalProperties": _ref("SiteStatus")},
        },
    },
    "MergedEvents": {
        "type": "object",
        "required": ["events", "next_cursor", "sites"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "next_cursor": {"type": ["string", "null"]},
            "sites": {"type": "object", "additionalProperties": _ref("SiteStatus")},
        },
    },
    "SiteJobDetail": {
        "type": "object",
        "required": ["job", "subjobs", "events", "site", "sites"],
        "properties": {
            "job": _ref("Entity"),
            "subjobs": {"type": "array", "items": _ref("Entity")},
            "events": {"type": "array", "items": _ref("Event")},
            "site": {"type": "string"},
            "sites": {"type": "object", "additionalProperties": _ref("SiteStatus")},
        },
    },
    "Sites": {
        "type": "object",
        "required": ["sites"],
        "properties": {
            "site_id": {"type": "string"},
            "sites": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "url"],
                    "properties": {
                        "name": {"type": "string"},
                        "url": {"type": "string"},
                        "timeout_s": {"type": "number"},
                    },
                },
            },
        },
    },
    "CentralHealth": {
        "type": "object",
        "required": ["status"],
        "description": "Without the read token only status; the rest needs the read scope.",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "site_id": {"type": "string"},
            "sites": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["reachable", "latency_ms"],
                    "properties": {
                        "url": {"type": "string"},
                        "reachable": {"type": "boolean"},
                        "status": {"type": ["string", "null"]},
                        "latency_ms": {"type": "number"},
                        "error": {"type": "string"},
                    },
                },
            },
        },
    },
}


def _list_op(operation_id: str, summary: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "security": READ_AUTH,
            "parameters": [*ENTITY_PARAMS, *extra],
            "responses": {
                "200": _json(_ref("MergedPage"), "One merged page and each site's status."),
                **COMMON_ERRORS,
            },
        }
    }


PATHS: dict[str, Any] = {
    "/v1/sites": {
        "get": {
            "operationId": "sites",
            "summary": "The sites this central host reads.",
            "security": READ_AUTH,
            "responses": {"200": _json(_ref("Sites"), "The configured sites."), **COMMON_ERRORS},
        }
    },
    "/v1/jobs": _list_op("jobs", "Jobs of one, several or all sites, merged by the sort.", []),
    "/v1/subjobs": _list_op(
        "subjobs",
        "Subjobs of one, several or all sites, merged by the sort.",
        [_query("parent_id", "Subjobs of this job.")],
    ),
    "/v1/jobs/{id}": {
        "get": {
            "operationId": "jobDetail",
            "summary": "A job (or subjob) with its subjobs and events, from the site that has it.",
            "security": READ_AUTH,
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                SITE,
                _query(
                    "events_limit",
                    "At most this many events (default 1000).",
                    {"type": "integer", "minimum": 1, "maximum": 10_000},
                ),
            ],
            "responses": {
                "200": _json(_ref("SiteJobDetail"), "The job and the site that has it."),
                **COMMON_ERRORS,
                "404": _error("No site that answered has this id (missing sites are named)."),
            },
        }
    },
    "/v1/data/unified": {
        "get": {
            "operationId": "unified",
            "summary": "Unified events of one, several or all sites, merged by (time, event_id).",
            "security": READ_AUTH,
            "parameters": [
                *[p for p in EVENT_FILTERS if p["name"] not in ("site", "limit")],
                SITE,
                _query(
                    "limit",
                    "Page size (default 100).",
                    {"type": "integer", "minimum": 1, "maximum": MAX_QUERY_LIMIT},
                ),
                _query("sources", "Comma-separated source names, passed to every site."),
            ],
            "responses": {
                "200": _json(_ref("MergedEvents"), "Merged events and each site's status."),
                **COMMON_ERRORS,
            },
        }
    },
    "/v1/healthz": open_get(
        "health",
        "Each site's reachability, status and latency "
        "(no auth: status only; details with the read token).",
        {
            "200": _json(_ref("CentralHealth"), "ok, or degraded when a site is not ok."),
            "503": _json(_ref("CentralHealth"), "down: no site is reachable."),
        },
    ),
    "/metrics": METRICS_PATH,
    "/openapi.json": OPENAPI_PATH,
}


def document(plugin_routes: list[tuple[str, list[str]]] = ()) -> dict[str, Any]:
    """The OpenAPI document; ``plugin_routes`` (path, methods) are listed as plugin-defined."""
    return common_document(
        title="wafermon central",
        description="Many sites' gateways behind one API: fan-out with per-site timeouts, "
        "partial answers that name missing sites, merged pagination.",
        paths=PATHS,
        schemas=SCHEMAS,
        security=READ_AUTH,
        plugin_routes=list(plugin_routes),
        plugin_access="read scope",
    )
