"""Every host's OpenAPI 3.1 document, built from its live route table.

How a route declares its docs: decorate the handler with ``@operation(...)`` (summary, an
operationId, query/path parameters, the request body, the responses) right where it is
defined; the host's ``document(routes, ...)`` walks the routes Starlette serves and takes each
route's path and methods from the route itself and its security from the host's ``scope_of``
(the function the token middleware enforces), so the document cannot list a path, method or
scope the app does not serve. A host route without a declaration is marked
``x-wafermon-undocumented`` and the host tests fail on it. Plugin routes (``register_routes``)
may be declared the same way; undeclared ones are listed as plugin-defined under the host's
scope.

The wire event schema is the core's JSON Schema itself (OpenAPI 3.1 speaks JSON Schema
2020-12), lifted into ``components/schemas`` (``Event``, ``Event_uuid`` ...), so no host can
describe a different event than the codec accepts. Error bodies have one shape everywhere
(``common.errors``), described once here. Answer bodies are msgspec Structs the handlers
build and encode (``common.bodies``); their components are generated from those types, and
so are the JSON request bodies' (``RequestBody`` Structs the handlers decode into).

Why not a library: Starlette's SchemaGenerator reads YAML from docstrings (unchecked until
served, and it skips mounted ASGI apps); spectree wants pydantic models for bodies the hosts
decode with msgspec; apispec would only hold the dictionary built here. The declarations are
typed (attrs), checked when the app is built, and the components are JSON Schema already.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from wafermon import schema_path

from .. import __version__
from .auth import needed_scope
from .bodies import Error, schemas
from .errors import JSONResponse
from .metrics import HostMetrics
from .observe import plain_template

REF = "#/components/schemas/"
#: The attribute ``@operation`` sets on a handler.
ATTRIBUTE = "__wafermon_openapi__"
F = TypeVar("F", bound=Callable[..., Any])


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


def json_request(type_: type[Any]) -> dict[str, Any]:
    """A required ``application/json`` request body: the component of the ``RequestBody``
    Struct the handler decodes it into (``common.bodies.decode_request``)."""
    return {"required": True, "content": {"application/json": {"schema": ref(type_.__name__)}}}


def error(description: str) -> dict[str, Any]:
    """A response whose body is the common error shape."""
    return json_content(ref("Error"), description)


def retry_later(description: str) -> dict[str, Any]:
    """An error response carrying ``Retry-After`` (seconds)."""
    return {
        **error(description),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    }


def query_param(
    name: str, description: str, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An optional query parameter; a non-empty string unless ``schema`` says otherwise."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string", "minLength": 1},
    }


def path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


#: ``Problem`` and ``Error``: the error body of ``common.errors``, from its Struct.
ERROR_SCHEMAS: dict[str, Any] = schemas(Error)

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
#: What a route that needs a scope answers without the right token (``common.auth``).
AUTH_ERRORS = {
    "401": "A token is configured and the request carries none.",
    "403": "The token does not grant the {scope} scope.",
}


@attrs.frozen
class Operation:
    """One route's documentation, declared next to its handler with ``@operation``.

    ``responses`` maps a status code to a response object (``json_content``, ``error``);
    401 and 403 are added for routes that need a token, unless given. ``parameters`` are
    OpenAPI parameter objects (``query_param``, ``path_param``).
    """

    operation_id: str | None
    summary: str
    responses: Mapping[str, dict[str, Any]]
    parameters: Sequence[dict[str, Any]] = ()
    request_body: dict[str, Any] | None = None
    description: str | None = None
    undocumented: bool = False

    def to_openapi(self, scope: str | None) -> dict[str, Any]:
        op: dict[str, Any] = {"summary": self.summary}
        if self.operation_id:
            op["operationId"] = self.operation_id
        if self.description:
            op["description"] = self.description
        op["security"] = [] if scope is None else [{"bearer": []}]
        if scope is not None:
            op["x-wafermon-scope"] = scope  # which token: bearer security has no scopes
        if self.parameters:
            op["parameters"] = [dict(p) for p in self.parameters]
        if self.request_body is not None:
            op["requestBody"] = self.request_body
        responses = dict(self.responses)
        if scope is not None:
            for status, text in AUTH_ERRORS.items():
                responses.setdefault(status, error(text.format(scope=scope)))
        op["responses"] = dict(sorted(responses.items()))
        if self.undocumented:
            op["x-wafermon-undocumented"] = True
        return op


def operation(
    operation_id: str,
    summary: str,
    responses: Mapping[str, dict[str, Any]],
    *,
    parameters: Sequence[dict[str, Any]] = (),
    request_body: dict[str, Any] | None = None,
    description: str | None = None,
) -> Callable[[F], F]:
    """Declare a handler's OpenAPI operation (see the module docstring)."""
    return documented(
        Operation(operation_id, summary, responses, tuple(parameters), request_body, description)
    )


def documented(op: Operation) -> Callable[[F], F]:
    """Attach an ``Operation`` built elsewhere (shared by several handlers) to a handler."""

    def mark(handler: F) -> F:
        setattr(handler, ATTRIBUTE, op)
        return handler

    return mark


def declared(endpoint: Any) -> Operation | None:
    """The ``@operation`` of a route's endpoint (a function or a bound method), if any."""
    found = getattr(endpoint, ATTRIBUTE, None)
    return found if isinstance(found, Operation) else None


#: GET /metrics and GET /openapi.json, the same on every host.
METRICS = Operation(
    "metrics",
    "Prometheus metrics (no auth).",
    {
        "200": {
            "description": "Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
OPENAPI = Operation(
    "openapi",
    "This document (no auth).",
    {"200": json_content({"type": "object"}, "OpenAPI 3.1 document.")},
)


documented(METRICS)(HostMetrics.endpoint)


@documented(OPENAPI)
async def serve_document(request: Request) -> Response:
    """GET /openapi.json: the document the app was built with (``app.state.openapi``)."""
    return JSONResponse(request.app.state.openapi)


@attrs.frozen
class Endpoint:
    """One (path template, method) the app serves and what handles it."""

    path: str
    method: str
    endpoint: Any


def endpoints(routes: Sequence[Any], prefix: str = "") -> Iterator[Endpoint]:
    """Every (path, method) of a route table. A ``Mount`` contributes its own routes under
    its prefix; a mounted app without a route table (any ASGI app) is ``{prefix}/{path}``
    taking GET."""
    for route in routes:
        if isinstance(route, Route):
            path = plain_template(prefix + route.path)
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield Endpoint(path, method, route.endpoint)
        elif isinstance(route, Mount):
            if route.routes:
                yield from endpoints(list(route.routes), prefix + route.path)
            else:
                yield Endpoint(plain_template(prefix + route.path) + "/{path}", "GET", route.app)


def undocumented(doc: dict[str, Any]) -> list[str]:
    """``METHOD /path`` of each host route a document lists without a declaration."""
    return [
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get("x-wafermon-undocumented")
    ]


def document(
    *,
    title: str,
    description: str,
    routes: Sequence[Any],
    plugin_routes: Sequence[Any] = (),
    schemas: dict[str, Any],
    scope_of: Callable[..., str | None],
) -> dict[str, Any]:
    """A host's document: each of its ``routes`` as declared, then each plugin route (as
    declared, or as plugin-defined), with the security ``scope_of`` enforces for its path.

    A host route without a declaration is listed with ``x-wafermon-undocumented: true``, which
    the tests refuse (``undocumented``), so a new route cannot ship undocumented.
    """
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints(routes):
        found = declared(ep.endpoint) or Operation(
            None,
            f"UNDOCUMENTED: {ep.method} {ep.path} has no @operation declaration.",
            {"default": {"description": "Undocumented."}},
            undocumented=True,
        )
        paths.setdefault(ep.path, {})[ep.method.lower()] = found.to_openapi(
            needed_scope(scope_of, ep.path, ep.method)
        )
    for ep in endpoints(plugin_routes):
        scope = needed_scope(scope_of, ep.path, ep.method)
        found = declared(ep.endpoint) or Operation(
            None,
            f"Added by a plugin (register_routes hook); {scope or 'no'} scope.",
            {"default": {"description": "Defined by the plugin."}},
        )
        paths.setdefault(ep.path, {})[ep.method.lower()] = found.to_openapi(scope)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__, "description": description},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": BEARER_SCHEME},
        "security": [{"bearer": []}],
    }
