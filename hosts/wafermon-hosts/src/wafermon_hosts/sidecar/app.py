"""The sidecar's Starlette app: routes, middleware and lifespan in one place.

``load_sidecar`` builds the runtime from a loaded site config and plugins; ``create_app``
wraps it in the app. Middleware, outermost first, as in the gateway: the request observer
(id, log line, metrics, span; it sees auth failures too), then token auth, then the ingest
routes served directly (``common.direct``), then Starlette's routing for the rest.
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
from . import health, ingest, openapi
from .runtime import Sidecar
from .settings import SERVED_SCOPES, build_sidecar

INGEST_PATHS = ("/v1/ingest/events", "/v1/ingest/events:batch")


def load_sidecar(
    loaded: LoadedConfig, plugins: Plugins, *, listen: str | None = None, span_exporter: Any = None
) -> Sidecar:
    """The sidecar a site config describes (components built, not started).

    Raises ConfigError / PluginError for config faults, TracingUnavailable when tracing is on
    without OpenTelemetry. ``span_exporter`` exists for tests.
    """
    parts = build_sidecar(loaded, plugins, listen=listen)
    tracing = None
    if parts.settings.tracing.enabled:
        tracing = Tracing.create(
            "wafermon-sidecar",
            otlp_endpoint=parts.settings.tracing.otlp_endpoint,
            exporter=span_exporter,
        )
    return Sidecar(parts, plugins, tracing=tracing)


def scope_of(path: str) -> str | None:
    """The token scope a path needs: none for the open paths, ingest for the ingest paths,
    read for the rest (plugin routes)."""
    if path in OPEN_PATHS:
        return None
    return INGEST if path in INGEST_PATHS else READ


def create_app(sc: Sidecar) -> Starlette:
    """The ASGI app serving ``sc``; its lifespan opens the spool, starts backends and router,
    and on shutdown drains, stops and closes them."""
    plugin_routes = sc.plugins.routes("sidecar")
    # Each handler declares its OpenAPI operation (@operation, common/openapi.py).
    ingest_routes = [
        Route(INGEST_PATHS[0], ingest.ingest, methods=["POST"]),
        Route(INGEST_PATHS[1], ingest.ingest_batch, methods=["POST"]),
    ]
    own_routes = [
        *ingest_routes,
        Route("/v1/healthz", health.healthz, methods=["GET"]),
        Route(PLUGINS_PATH, list_plugins, methods=["GET"]),
        Route("/metrics", sc.metrics.endpoint, methods=["GET"]),
        Route("/openapi.json", serve_document, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await sc.start()
        try:
            yield
        finally:
            await sc.close()

    return host_app(
        sc,
        name="sidecar",
        own_routes=own_routes,
        plugin_routes=plugin_routes,
        document=openapi.document,
        scope_of=scope_of,
        served_scopes=SERVED_SCOPES,
        lifespan=lifespan,
        direct=ingest_routes,
    )
