"""The gateway's Starlette app: routes, middleware and lifespan in one place.

``load_gateway`` builds the runtime from a loaded site config and plugins; ``create_app``
wraps it in the app. Middleware, outermost first: the request observer (id, log line, metrics,
span; it sees auth failures too), then token auth, then the ingest route served directly
(``common.direct``), then Starlette's routing for the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from wafermon.config import LoadedConfig
from wafermon.plugins import Plugins

from ..common.app import OPEN_PATHS, host_app
from ..common.auth import INGEST, READ
from ..common.openapi import serve_document
from ..common.plugin_list import PATH as PLUGINS_PATH
from ..common.plugin_list import list_plugins
from ..common.tracing import Tracing
from . import entities, health, ingest, openapi, query, stream, trends
from .alerting import api as alerting_api
from .alerting import build_engine
from .runtime import Gateway
from .settings import SERVED_SCOPES, build_gateway

INGEST_PATH = "/v1/ingest/managed"


def load_gateway(
    loaded: LoadedConfig,
    plugins: Plugins,
    *,
    listen: str | None = None,
    span_exporter: Any = None,
    heartbeat_s: float | None = None,
) -> Gateway:
    """The gateway a site config describes (components built, not started).

    Raises ConfigError / PluginError for config faults, TracingUnavailable when tracing is on
    without OpenTelemetry. ``span_exporter`` and ``heartbeat_s`` exist for tests.
    """
    parts = build_gateway(loaded, plugins, listen=listen)
    tracing = None
    if parts.settings.tracing.enabled:
        tracing = Tracing.create(
            "wafermon-gateway",
            otlp_endpoint=parts.settings.tracing.otlp_endpoint,
            exporter=span_exporter,
        )
    gw = Gateway(parts, plugins, tracing=tracing, heartbeat_s=heartbeat_s)
    gw.alerting = build_engine(gw, parts.notifiers)  # None unless gateway.alerting.enabled
    return gw


def scope_of(path: str, method: str = "GET") -> str | None:
    """The token scope a request needs: ingest, admin (alerting writes), read (the default,
    plugin routes too) or none (open paths, and methods an alerting path does not serve)."""
    if path == INGEST_PATH:
        return INGEST
    alerting = alerting_api.scope_for(path, method)  # read or admin; None: not served
    if alerting is not False:
        return alerting
    return None if path in OPEN_PATHS else READ


def create_app(gw: Gateway) -> Starlette:
    """The ASGI app serving ``gw``; its lifespan starts and closes the components."""
    plugin_routes = gw.plugins.routes("gateway")
    # Each handler declares its OpenAPI operation (@operation, common/openapi.py).
    ingest_route = Route(INGEST_PATH, ingest.ingest, methods=["POST"])
    own_routes = [
        ingest_route,
        Route("/v1/jobs", entities.jobs, methods=["GET"]),
        Route("/v1/subjobs", entities.subjobs, methods=["GET"]),
        Route("/v1/jobs/{id:path}", entities.job_detail, methods=["GET"]),
        Route("/v1/query/external", query.external, methods=["POST"]),
        Route("/v1/data/unified", query.unified, methods=["GET"]),
        Route("/v1/trends", trends.trends, methods=["GET"]),
        Route("/v1/trends/sources", trends.sources, methods=["GET"]),
        Route("/v1/stream", stream.stream, methods=["GET"]),
        Route("/v1/healthz", health.healthz, methods=["GET"]),
        Route(PLUGINS_PATH, list_plugins, methods=["GET"]),
        *(Route(p, handler, methods=m) for p, handler, m, _scope in alerting_api.ROUTES),
        Route("/metrics", gw.metrics.endpoint, methods=["GET"]),
        Route("/openapi.json", serve_document, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        try:
            if gw.alerting is not None:
                await gw.alerting.start()
            yield
        finally:
            if gw.alerting is not None:
                await gw.alerting.close()
            await gw.close()

    return host_app(
        gw,
        name="gateway",
        own_routes=own_routes,
        plugin_routes=plugin_routes,
        document=openapi.document,
        scope_of=scope_of,
        served_scopes=SERVED_SCOPES,
        lifespan=lifespan,
        direct=[ingest_route],
    )
