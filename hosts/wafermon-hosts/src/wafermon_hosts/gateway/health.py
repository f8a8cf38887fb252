"""GET /v1/healthz: is the store up, and which sources answer.

``down`` (503) when the managed store is not ok: a load balancer should send traffic to
another gateway. ``degraded`` (200) when only sources are failing: the gateway still ingests
and serves its own data. Checks run concurrently, each with the source timeout, at most once
per ``health_ttl`` (``Gateway.health``); the details need the read scope
(``common.health``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from ..common.health import health_response
from ..common.openapi import json_content, operation, ref
from .bodies import Check, Health, StoreCheck


async def report(gw: Any) -> Health:
    """Run every check once: the body of a healthz answer (details included)."""
    names = list(gw.sources)
    streams = list(gw.streams.values())
    store, *checks = await asyncio.gather(
        gw.store_health(),
        *(gw.sources[n].health() for n in names),
        *(s.sample(gw.settings.source_timeout) for s in streams),
    )
    sources, stream_checks = checks[: len(names)], checks[len(names) :]
    source_json = {n: Check(ok=h.ok, detail=h.detail) for n, h in zip(names, sources, strict=True)}
    status: Literal["ok", "degraded", "down"]
    if not store.ok:
        status = "down"
    elif not all(h.ok for h in [*sources, *stream_checks]):
        status = "degraded"
    else:
        status = "ok"
    return Health(
        status=status,
        site_id=gw.site_id,
        store=StoreCheck(name=gw.store.name, type=gw.store_type, ok=store.ok, detail=store.detail),
        sources=source_json,
        streams={s.name: s.report(h) for s, h in zip(streams, stream_checks, strict=True)},
    )


@operation(
    "health",
    "Health of the store and the sources (no auth: status only; details with the read token).",
    {
        "200": json_content(ref("Health"), "ok, or degraded when a source is failing."),
        "503": json_content(ref("Health"), "down: the managed store is not ok."),
    },
)
async def healthz(request: Request) -> Response:
    body = await request.app.state.gateway.health.get()
    return health_response(request, body, 503 if body.status == "down" else 200)
