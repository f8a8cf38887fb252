"""The sidecar's OpenAPI 3.1 document: its component schemas (the answers' from the Structs of
``bodies``, the ingest answer's still hand-written); the operations are declared on
the handlers (``@operation``, see ``common.openapi``) and the paths come from the routes.

Served at /openapi.json; a test checks that it describes every route the app has (and nothing
else) and the API fuzz test generates its requests from it. The event schema is the core's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..common.bodies import schemas
from ..common.openapi import ERROR_SCHEMAS, event_schemas, ref
from ..common.openapi import document as common_document
from ..common.plugin_list import SCHEMAS as PLUGIN_SCHEMAS
from .bodies import Health

COUNTER = {"type": "integer", "minimum": 0}

SCHEMAS: dict[str, Any] = {
    **event_schemas(),
    **ERROR_SCHEMAS,
    **PLUGIN_SCHEMAS,
    **schemas(Health),
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
}


def document(
    routes: Sequence[Any],
    plugin_routes: Sequence[Any] = (),
    scope_of: Callable[[str], str | None] = lambda _path: "ingest",
) -> dict[str, Any]:
    """The OpenAPI document of these routes (each handler declares its own ``@operation``)."""
    return common_document(
        title="wafermon sidecar",
        description="Accepts events into a durable local spool and delivers them to every "
        "configured backend.",
        routes=routes,
        plugin_routes=plugin_routes,
        schemas=SCHEMAS,
        scope_of=scope_of,
    )
