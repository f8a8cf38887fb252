"""Central's Starlette app: routes, middleware and lifespan, built the way the gateway's is.

Middleware, outermost first: the request observer (id, log line, metrics, span), then token
auth (one ``read`` scope; health, metrics and the API description are open), then routing.
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
from ..common.auth import READ
from ..common.openapi import serve_document
from ..common.plugin_list import PATH as PLUGINS_PATH
from ..common.plugin_list import list_plugins
from ..common.tracing import Tracing
from . import alerts, openapi, routes, trends
from .runtime import Central
from .settings import SERVED_SCOPES, build_central


def load_central(
    loaded: LoadedConfig,
    plugins: Plugins | None = None,
    *,
    listen: str | None = None,
    span_exporter: Any = None,
) -> Central:
    """The central host a config describes (not started). Raises ConfigError for config
    faults, TracingUnavailable when tracing is on without OpenTelemetry."""
    settings = build_central(loaded, listen=listen)
    tracing = None
    if settings.tracing.enabled:
        tracing = Tracing.create(
            "wafermon-central",
            otlp_endpoint=settings.tracing.otlp_endpoint,
            exporter=span_exporter,
        )
    return Central(loaded.site.site_id, settings, plugins=plugins, tracing=tracing)


def scope_of(path: str) -> str | None:
    return None if path in OPEN_PATHS else READ


def create_app(central: Central) -> Starlette:
    """The ASGI app serving ``central``; its lifespan opens and closes the site clients."""
    plugin_routes = central.plugins.routes("central") if central.plugins is not None else []
    # Each handler declares its OpenAPI operation (@operation, common/openapi.py).
    own_routes = [
        Route("/v1/sites", routes.sites, methods=["GET"]),
        Route("/v1/jobs", routes.jobs, methods=["GET"]),
        Route("/v1/subjobs", routes.subjobs, methods=["GET"]),
        # {id:path}: job and subjob ids may hold "/" (lot-4711/w03).
        Route("/v1/jobs/{id:path}", routes.job_detail, methods=["GET"]),
        Route("/v1/data/unified", routes.unified, methods=["GET"]),
        Route("/v1/alerts", alerts.alerts, methods=["GET"]),
        Route("/v1/trends", trends.trends, methods=["GET"]),
        Route("/v1/trends/sources", trends.sources, methods=["GET"]),
        Route("/v1/healthz", routes.healthz, methods=["GET"]),
        Route(PLUGINS_PATH, list_plugins, methods=["GET"]),
        Route("/metrics", central.metrics.endpoint, methods=["GET"]),
        Route("/openapi.json", serve_document, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await central.start()
        try:
            yield
        finally:
            await central.close()

    return host_app(
        central,
        name="central",
        own_routes=own_routes,
        plugin_routes=plugin_routes,
        document=openapi.document,
        scope_of=scope_of,
        served_scopes=SERVED_SCOPES,
        lifespan=lifespan,
    )
