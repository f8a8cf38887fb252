"""Building blocks of every host's OpenAPI 3.1 document.

The wire event schema is the core's JSON Schema itself (OpenAPI 3.1 speaks JSON Schema
2020-12), lifted into ``components/schemas`` (``Event``, ``Event_uuid`` ...), so no host can
describe a different event than the codec accepts. Error bodies have one shape everywhere
(``common.errors``), described once here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from starlette.routing import Mount, Route

from wafermon import schema_path

from .. import __version__
from .observe import plain_template

REF = "#/components/schemas/"


def event_schemas() -> dict[str, Any]:
    """The core's event schema with its ``$defs`` lifted into components (Event_uuid ...)."""
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    defs = schema.pop("$defs", {})
    for key in ("$schema", "$id"):
        schema.pop(key, None)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (REF + "Event_" + v.removeprefix("#/$defs/"))
                if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/")
                else rewrite(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    out = {"Event": rewrite(schema)}
    out.update({f"Event_{name}": rewrite(d) for name, d in defs.items()})
    return out


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response (or request body) of ``application/json`` with ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    """A response whose body is the common error shape."""
    return json_content(ref("Error"), description)


#: ``Problem`` and ``Error``: the error body of ``common.errors``.
ERROR_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["path", "message"],
        "properties": {
            "path": {"type": "string", "description": "JSON path or parameter name."},
            "message": {"type": "string"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "problems": {"type": "array", "items": ref("Problem")},
        },
    },
}

#: The request body of every ingest endpoint: one event, a JSON array of events, or NDJSON.
EVENTS_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [ref("Event"), {"type": "array", "items": ref("Event")}]}
        },
        "application/x-ndjson": {
            "schema": {"type": "string", "description": "One event per line."}
        },
    },
}

BEARER_SCHEME = {"bearer": {"type": "http", "scheme": "bearer"}}


def open_get(operation_id: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    """A GET anyone may call (health, metrics, the document itself)."""
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "security": [],
            "responses": responses,
        }
    }


METRICS_PATH = open_get(
    "metrics",
    "Prometheus metrics (no auth).",
    {
        "200": {
            "description": "Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
OPENAPI_PATH = open_get(
    "openapi",
    "This document (no auth).",
    {"200": json_content({"type": "object"}, "OpenAPI 3.1 document.")},
)


def plugin_paths(routes: list[Any], prefix: str = "") -> list[tuple[str, list[str]]]:
    """(path template, methods) of each plugin route, for ``document(plugin_routes)``.

    A ``Mount`` contributes its own routes under its prefix; a mounted app without a route
    table (any ASGI app) is listed as ``{prefix}/{path}`` taking GET.
    """
    found = []
    for route in routes:
        if isinstance(route, Route):
            path = plain_template(prefix + route.path)
            found.append((path, sorted((route.methods or set()) - {"HEAD"})))
        elif isinstance(route, Mount):
            inner = route.routes
            if inner:
                found += plugin_paths(list(inner), prefix + route.path)
            else:
                found.append((plain_template(prefix + route.path) + "/{path}", ["GET"]))
    return found


def document(
    *,
    title: str,
    description: str,
    paths: dict[str, Any],
    schemas: dict[str, Any],
    security: list[dict[str, list[str]]],
    plugin_routes: list[tuple[str, list[str]]],
    plugin_access: str,
) -> dict[str, Any]:
    """A host's document: its own ``paths``, then each plugin route (``plugin_access`` says
    which token it needs), under the host's default ``security``."""
    paths = copy.deepcopy(paths)
    for path, methods in plugin_routes:
        for method in methods:
            paths.setdefault(path, {})[method.lower()] = {
                "summary": f"Added by a plugin (register_routes hook); {plugin_access}.",
                "security": security,
                "responses": {"default": {"description": "Defined by the plugin."}},
            }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__, "description": description},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": BEARER_SCHEME},
        "security": security,
    }
