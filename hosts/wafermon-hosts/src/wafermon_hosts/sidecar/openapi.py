"""The sidecar's OpenAPI 3.1 description, as one data structure.

Served at /openapi.json; a test checks that it describes every route the app has (and nothing
else) and the API fuzz test generates its requests from it. The event schema is the core's.
"""

from __future__ import annotations

from typing import Any

from ..common.openapi import (
    ERROR_SCHEMAS,
    EVENTS_BODY,
    METRICS_PATH,
    OPENAPI_PATH,
    error,
    event_schemas,
    json_content,
    open_get,
    ref,
)
from ..common.openapi import document as common_document

AUTH = [{"bearer": []}]
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
COUNTER = {"type": "integer", "minimum": 0}

SCHEMAS: dict[str, Any] = {
    **event_schemas(),
    **ERROR_SCHEMAS,
    "IngestResult": {
        "type": "object",
        "required": ["index", "event_id", "status", "errors"],
        "properties": {
            "index": {"type": "integer", "description": "0-based position in the body."},
            "event_id": {"type": ["string", "null"], "description": "null if unreadable."},
            "status": {"type": "string", "enum": ["accepted", "rejected"]},
            "errors": {
                "type": "array",
                "items": ref("Problem"),
                "description": "Why it was rejected (JSON paths); empty when accepted.",
            },
        },
    },
    "IngestResponse": {
        "type": "object",
        "required": ["accepted", "rejected", "results"],
        "properties": {
            "error": {"type": "string", "description": "Only when nothing was accepted (400)."},
            "accepted": COUNTER,
            "rejected": COUNTER,
            "results": {"type": "array", "items": ref("IngestResult")},
        },
    },
    "BackendStatus": {
        "type": "object",
        "required": ["breaker", "acked_seq", "lag", "last_error"],
        "properties": {
            "type": {"type": "string", "description": "The backend's plugin type."},
            "breaker": {"type": "string", "enum": ["closed", "half_open", "open"]},
            "consecutive_failures": {
                **COUNTER,
                "description": "Failed attempts since its last success (over 0: degraded).",
            },
            "acked_seq": {**COUNTER, "description": "Highest spool record it acknowledged."},
            "lag": {**COUNTER, "description": "Spool records it has not acknowledged."},
            "delivered_events": COUNTER,
            "retries": COUNTER,
            "dead_lettered_events": COUNTER,
            "fallback_events": COUNTER,
            "last_error": {"type": ["string", "null"]},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "description": "Without the read token only status; the rest needs the read scope.",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down", "stopping"]},
            "site_id": {"type": "string"},
            "spool": {
                "type": "object",
                "required": ["dir", "bytes", "max_bytes", "last_seq", "segments"],
                "properties": {
                    "dir": {"type": "string"},
                    "bytes": COUNTER,
                    "max_bytes": COUNTER,
                    "last_seq": COUNTER,
                    "segments": COUNTER,
                    "ok": {"type": "boolean"},
                    "detail": {"type": "string"},
                },
            },
            "backends": {"type": "object", "additionalProperties": ref("BackendStatus")},
        },
    },
}


def _ingest(operation_id: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "security": AUTH,
            "requestBody": EVENTS_BODY,
            "responses": {
                "202": json_content(
                    ref("IngestResponse"),
                    "The accepted events are on disk (fsynced); every event's outcome, in "
                    "input order.",
                ),
                "400": json_content(
                    {"oneOf": [ref("IngestResponse"), ref("Error")]},
                    "Nothing was stored: no event is valid (per-event results), or the body "
                    "is unreadable as a whole (invalid JSON or UTF-8, nested too deeply).",
                ),
                "401": error("A token is configured and the request carries none."),
                "403": error("The token is not the sidecar's ingest token."),
                "413": error("The body is larger than sidecar.max_body_bytes."),
                "415": error("Unsupported Content-Type."),
                "422": error("More events than sidecar.max_batch_events."),
                "503": {
                    **error(
                        "Nothing was stored: the spool is full or failing, or the sidecar is "
                        "shutting down; send the same body again after Retry-After seconds."
                    ),
                    "headers": RETRY_AFTER,
                },
            },
        }
    }


PATHS: dict[str, Any] = {
    "/v1/ingest/events": _ingest(
        "ingestEvents", "Accept events into the durable spool (one event, a JSON array or NDJSON)."
    ),
    "/v1/ingest/events:batch": _ingest(
        "ingestEventsBatch", "The same as POST /v1/ingest/events (kept for older SDKs)."
    ),
    "/v1/healthz": open_get(
        "health",
        "The spool and every backend's delivery state "
        "(no auth: status only; details with the read token).",
        {
            "200": json_content(ref("Health"), "ok, or degraded when a backend's circuit is open."),
            "503": json_content(ref("Health"), "down (the spool is unusable) or stopping."),
        },
    ),
    "/metrics": METRICS_PATH,
    "/openapi.json": OPENAPI_PATH,
}


def document(plugin_routes: list[tuple[str, list[str]]] = ()) -> dict[str, Any]:
    """The OpenAPI document; ``plugin_routes`` (path, methods) are listed as plugin-defined."""
    return common_document(
        title="wafermon sidecar",
        description="Accepts events into a durable local spool and delivers them to every "
        "configured backend.",
        paths=PATHS,
        schemas=SCHEMAS,
        security=AUTH,
        plugin_routes=list(plugin_routes),
        plugin_access="needs the ingest token",
    )
