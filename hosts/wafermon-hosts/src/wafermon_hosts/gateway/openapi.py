"""The gateway's OpenAPI 3.1 description, as one data structure.

It is served at /openapi.json, a test checks that it describes every route the app has (and
nothing else), and the API fuzz test generates its requests from it. The wire event schema is
the core's JSON Schema itself (OpenAPI 3.1 speaks JSON Schema 2020-12), so the API can never
describe a different event than the codec accepts.
"""

from __future__ import annotations

from typing import Any

from wafermon.interfaces import MAX_QUERY_LIMIT
from wafermon.store import ENTITY_SORTS, MAX_ENTITY_LIMIT

from ..common.openapi import (
    ERROR_SCHEMAS,
    EVENTS_BODY,
    METRICS_PATH,
    OPENAPI_PATH,
    event_schemas,
    open_get,
)
from ..common.openapi import document as common_document
from ..common.openapi import error as _error
from ..common.openapi import json_content as _json
from ..common.openapi import ref as _ref


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string", "minLength": 1},
    }


TIME = {"type": "string", "format": "date-time"}
NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

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

READ_AUTH = [{"bearer": []}]
COMMON_ERRORS = {
    "400": _error("A parameter is invalid; problems[].path names it."),
    "401": _error("A token is configured and the request carries none."),
    "403": _error("The token does not grant this scope."),
}
STORE_DOWN = {
    "503": {
        **_error("The managed store is unavailable; retry after Retry-After seconds."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    }
}

SCHEMAS: dict[str, Any] = {
    **event_schemas(),
    **ERROR_SCHEMAS,
    "IngestResult": {
        "type": "object",
        "required": ["index", "event_id", "status"],
        "properties": {
            "index": {"type": "integer", "description": "0-based position in the batch."},
            "event_id": {**NULLABLE_STRING, "description": "null if it could not be read."},
            "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
            "errors": {"type": "array", "items": _ref("Problem")},
        },
    },
    "IngestResponse": {
        "type": "object",
        "required": ["accepted", "duplicates", "rejected", "results"],
        "properties": {
            "accepted": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "rejected": {"type": "integer"},
            "results": {"type": "array", "items": _ref("IngestResult")},
        },
    },
    "Entity": {
        "type": "object",
        "description": "Current state of a job or subjob, derived from its events.",
        "required": ["entity_type", "entity_id", "site_id", "app", "status", "start_time"],
        "properties": {
            "entity_type": {"type": "string", "enum": ["job", "subjob"]},
            "entity_id": {"type": "string"},
            "site_id": {"type": "string"},
            "app": {"type": "string"},
            "app_version": NULLABLE_STRING,
            "parent_id": NULLABLE_STRING,
            "business_key": NULLABLE_STRING,
            "sub_key": NULLABLE_STRING,
            "status": {"type": "string", "enum": ["running", "finished", "failed"]},
            "start_time": {**TIME, "description": "started_at, else first_seen_at."},
            "started_at": NULLABLE_TIME,
            "first_seen_at": TIME,
            "finished_at": NULLABLE_TIME,
            "updated_at": TIME,
            "duration_s": NULLABLE_NUMBER,
            "cpu_user_s": NULLABLE_NUMBER,
            "cpu_system_s": NULLABLE_NUMBER,
            "mem_max_mb": NULLABLE_NUMBER,
            "progress": NULLABLE_NUMBER,
            "error": {
                "type": ["object", "null"],
                "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "stack": NULLABLE_STRING,
                },
            },
            "metadata": {"type": "object"},
            "event_count": {"type": "integer"},
        },
    },
    "EntityPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref("Entity")},
            "next_cursor": NULLABLE_STRING,
        },
    },
    "JobDetail": {
        "type": "object",
        "required": ["job", "subjobs", "events"],
        "properties": {
            "job": _ref("Entity"),
            "subjobs": {"type": "array", "items": _ref("Entity")},
            "events": {"type": "array", "items": _ref("Event")},
        },
    },
    "Query": {
        "type": "object",
        "additionalProperties": False,
        "description": "Filters combine with AND; start inclusive, end exclusive.",
        "properties": {
            "start": NULLABLE_TIME,
            "end": NULLABLE_TIME,
            "site_id": NULLABLE_STRING,
            "app": NULLABLE_STRING,
            "entity_type": {"type": ["string", "null"], "enum": ["job", "subjob", None]},
            "entity_id": NULLABLE_STRING,
            "status": {"type": ["string", "null"], "enum": ["running", "finished", "failed", None]},
            "business_key": NULLABLE_STRING,
            "sub_key": NULLABLE_STRING,
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_QUERY_LIMIT},
            "cursor": NULLABLE_STRING,
        },
    },
    "EventPage": {
        "type": "object",
        "required": ["events", "next_cursor"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "next_cursor": NULLABLE_STRING,
        },
    },
    "SourceStatus": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "failed", "timed_out"]},
            "count": {"type": "integer", "description": "Events the source returned (if ok)."},
            "error": {"type": "string", "description": "Why it gave no page (if not ok)."},
        },
    },
    "UnifiedPage": {
        "type": "object",
        "required": ["events", "next_cursor", "sources"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "next_cursor": NULLABLE_STRING,
            "sources": {"type": "object", "additionalProperties": _ref("SourceStatus")},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "description": "Without the read token only status; the rest needs the read scope.",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "site_id": {"type": "string"},
            "store": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                    "ok": {"type": "boolean"},
                    "detail": {"type": "string"},
                },
            },
            "sources": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"ok": {"type": "boolean"}, "detail": {"type": "string"}},
                },
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/v1/ingest/managed": {
        "post": {
            "operationId": "ingest",
            "summary": "Store a batch of events in the managed store; one result per event.",
            "security": [{"bearer": []}],
            "requestBody": EVENTS_BODY,
            "responses": {
                "200": _json(_ref("IngestResponse"), "Every event's outcome, in input order."),
                "400": _error("The body as a whole is unreadable."),
                "401": COMMON_ERRORS["401"],
                "403": _error("The token does not grant the ingest scope."),
                "413": _error("The body is larger than gateway.max_body_bytes."),
                "415": _error("Unsupported Content-Type."),
                "422": _error("More events than gateway.max_batch_events."),
                **STORE_DOWN,
            },
        }
    },
    "/v1/jobs": {
        "get": {
            "operationId": "listJobs",
            "summary": "Jobs, newest start first by default.",
            "security": READ_AUTH,
            "parameters": ENTITY_FILTERS,
            "responses": {
                "200": _json(_ref("EntityPage"), "A page of jobs."),
                **COMMON_ERRORS,
                **STORE_DOWN,
            },
        }
    },
    "/v1/subjobs": {
        "get": {
            "operationId": "listSubjobs",
            "summary": "Subjobs, optionally of one job (parent_id).",
            "security": READ_AUTH,
            "parameters": [*ENTITY_FILTERS, _query("parent_id", "Only subjobs of this job.")],
            "responses": {
                "200": _json(_ref("EntityPage"), "A page of subjobs."),
                **COMMON_ERRORS,
                **STORE_DOWN,
            },
        }
    },
    "/v1/jobs/{id}": {
        "get": {
            "operationId": "getJob",
            "summary": "A job (or subjob) with its subjobs and its events, oldest first.",
            "security": READ_AUTH,
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                _query(
                    "events_limit",
                    "At most this many events (default 1000).",
                    {"type": "integer", "minimum": 1, "maximum": 10_000},
                ),
            ],
            "responses": {
                "200": _json(_ref("JobDetail"), "The job."),
                **COMMON_ERRORS,
                "404": _error("No job or subjob has this id."),
                **STORE_DOWN,
            },
        }
    },
    "/v1/query/external": {
        "post": {
            "operationId": "queryExternal",
            "summary": "Run a query on one named source (or 'managed').",
            "security": READ_AUTH,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["source"],
                            "properties": {"source": {"type": "string"}, "query": _ref("Query")},
                        }
                    }
                },
            },
            "responses": {
                "200": _json(_ref("EventPage"), "One page of the source's events."),
                **COMMON_ERRORS,
                "404": _error("No source has this name."),
                "413": _error("The body is larger than gateway.max_body_bytes."),
                "415": _error("Unsupported Content-Type."),
                "502": _error("The source failed; error says why."),
                "504": _error("The source did not answer within gateway.source_timeout."),
            },
        }
    },
    "/v1/data/unified": {
        "get": {
            "operationId": "unified",
            "summary": "Events from the managed store and the sources, merged and deduplicated.",
            "security": READ_AUTH,
            "parameters": [
                *EVENT_FILTERS,
                _query("parent_id", "Only events of the subjobs of this job."),
                _query(
                    "sources",
                    "Comma-separated source names (default: managed and every configured source).",
                ),
            ],
            "responses": {
                "200": _json(_ref("UnifiedPage"), "Merged events and each source's status."),
                **COMMON_ERRORS,
            },
        }
    },
    "/v1/stream": {
        "get": {
            "operationId": "stream",
            "summary": "Server-sent events: each newly accepted event as it is ingested.",
            "security": READ_AUTH,
            "parameters": [
                _query("site", "Only this site."),
                _query("app", "Only this app."),
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "Reconnecting: first replay the events stored after this "
                    "event_id (from the last 10,000 stored).",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "text/event-stream; `data:` is a wire event, `id:` its "
                    "event_id. Comment lines report heartbeats and dropped events.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **COMMON_ERRORS,
            },
        }
    },
    "/v1/healthz": open_get(
        "health",
        "Health of the store and the sources (no auth: status only; details with the read token).",
        {
            "200": _json(_ref("Health"), "ok, or degraded when a source is failing."),
            "503": _json(_ref("Health"), "down: the managed store is not ok."),
        },
    ),
    "/metrics": METRICS_PATH,
    "/openapi.json": OPENAPI_PATH,
}


def document(plugin_routes: list[tuple[str, list[str]]] = ()) -> dict[str, Any]:
    """The OpenAPI document; ``plugin_routes`` (path, methods) are listed as plugin-defined."""
    return common_document(
        title="wafermon gateway",
        description="A site's managed event store, external sources and unified view.",
        paths=PATHS,
        schemas=SCHEMAS,
        security=READ_AUTH,
        plugin_routes=list(plugin_routes),
        plugin_access="read scope",
    )
