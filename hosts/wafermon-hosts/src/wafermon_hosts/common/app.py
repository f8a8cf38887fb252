"""The Starlette app of every host, assembled in one place so that none can differ in what
guards it.

Middleware, outermost first: the request observer (id, log line, metrics, span: an answer that
auth refuses is logged and counted too), token auth (fail closed: a scope is open without a
token only when the settings say ``insecure``), then the host's ingest routes served without
Starlette's router (``DirectRoutes``), then the router.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from .auth import TokenAuth, open_scopes
from .direct import DirectRoutes
from .errors import EXCEPTION_HANDLERS
from .observe import RequestObserver

#: Paths anyone may read: load balancers, Prometheus and API clients need them without a token
#: (a gateway's health answers details only to the read scope).
OPEN_PATHS = frozenset({"/v1/healthz", "/metrics", "/openapi.json"})


def host_app(
    host: Any,
    *,
    name: str,
    own_routes: Sequence[Route],
    plugin_routes: Sequence[BaseRoute],
    document: Callable[..., dict[str, Any]],
    scope_of: Callable[..., str | None],
    served_scopes: Collection[str],
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]],
    direct: Sequence[Route] = (),
) -> Starlette:
    """The ASGI app serving ``host`` (its ``settings``, ``metrics``, ``tracing``, ``plugins``),
    kept in ``app.state.<name>``; ``document`` builds its OpenAPI description from the routes,
    ``direct`` are its ingest routes."""
    settings = host.settings
    opened = open_scopes(settings.tokens, served_scopes, insecure=settings.insecure)
    host.metrics.auth_state(insecure=settings.insecure, open_scopes=opened)
    middleware = [
        Middleware(RequestObserver, metrics=host.metrics, tracing=host.tracing),
        Middleware(TokenAuth, tokens=settings.tokens, scope_of=scope_of, open=opened),
    ]
    if direct:
        middleware.append(Middleware(DirectRoutes, routes=list(direct)))
    app = Starlette(
        routes=[*own_routes, *plugin_routes],
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    setattr(app.state, name, host)
    app.state.plugins = host.plugins
    app.state.openapi = document(own_routes, plugin_routes, scope_of)
    return app
