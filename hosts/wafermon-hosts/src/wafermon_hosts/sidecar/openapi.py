"""The sidecar's OpenAPI 3.1 document: its component schemas (generated from the answer
Structs of ``bodies``); the operations are declared on the handlers (``@operation``, see
``common.openapi``) and the paths come from the routes.

Served at /openapi.json; a test checks that it describes every route the app has (and nothing
else) and the API fuzz test generates its requests from it. The event schema is the core's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..common.bodies import schemas
from ..common.openapi import ERROR_SCHEMAS, event_schemas
from ..common.openapi import document as common_document
from ..common.plugin_list import SCHEMAS as PLUGIN_SCHEMAS
from .bodies import Health, IngestResponse

SCHEMAS: dict[str, Any] = {
    **event_schemas(),
    **ERROR_SCHEMAS,
    **PLUGIN_SCHEMAS,
    **schemas(Health, IngestResponse),
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
