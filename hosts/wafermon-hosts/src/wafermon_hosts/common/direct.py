"""Serve a host's hot routes (ingest) without Starlette's router and exception layers.

A single-event ingest POST is small: Starlette's ExceptionMiddleware, the router's matching
and the per-route exception wrapper each add a layer around ``send`` and a few microseconds,
together as much as the request's own checks. ``DirectRoutes`` sits inside the observer and
token auth (they see every request as before) and hands a request for one of its routes
straight to the endpoint; every other request goes on through Starlette unchanged. The routes
are the app's own ``Route`` objects, so the OpenAPI document and the observer's route template
do not change, and an error raised by the endpoint gets the same JSON answer as anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import EXCEPTION_HANDLERS

_HANDLED: tuple[type[Exception], ...] = tuple(EXCEPTION_HANDLERS)


class DirectRoutes:
    """ASGI middleware: requests matching a route's exact path and method go to its endpoint."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[Route]) -> None:
        self.app = app
        self.routes = {(r.path, m): r for r in routes for m in r.methods or ()}
        if any("{" in path for path, _ in self.routes):
            raise ValueError("direct routes are matched by their exact path: no parameters")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (
            self.routes.get((scope["path"], scope["method"])) if scope["type"] == "http" else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"], scope["endpoint"], scope["path_params"] = route, route.endpoint, {}
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except _HANDLED as exc:
            handler = next(h for t, h in EXCEPTION_HANDLERS.items() if isinstance(exc, t))
            response = await handler(request, exc)
        await response(scope, receive, send)
