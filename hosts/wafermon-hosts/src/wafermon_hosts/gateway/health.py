"""GET /v1/healthz: is the store up, and which sources answer.

``down`` (503) when the managed store is not ok: a load balancer should send traffic to
another gateway. ``degraded`` (200) when only sources are failing: the gateway still ingests
and serves its own data. Checks run concurrently, each with the source timeout.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from ..common.errors import JSONResponse


async def healthz(request: Request) -> Response:
    gw = request.app.state.gateway
    names = list(gw.sources)
    store, *sources = await asyncio.gather(
        gw.store_health(), *(gw.sources[n].health() for n in names)
    )
    source_json = {n: {"ok": h.ok, "detail": h.detail} for n, h in zip(names, sources, strict=True)}
    if not store.ok:
        status = "down"
    elif not all(h.ok for h in sources):
        status = "degraded"
    else:
        status = "ok"
    body = {
        "status": status,
        "site_id": gw.site_id,
        "store": {
            "name": gw.store.name,
            "type": gw.store_type,
            "ok": store.ok,
            "detail": store.detail,
        },
        "sources": source_json,
    }
    return JSONResponse(body, status_code=503 if status == "down" else 200)
