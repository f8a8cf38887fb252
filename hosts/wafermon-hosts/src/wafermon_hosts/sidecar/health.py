"""GET /v1/healthz: the spool, and where each backend's delivery stands.

``ok`` (200) when every backend's last attempt succeeded. ``degraded`` (200) from a
backend's first failed attempt (its circuit may still be closed) until it succeeds: the
sidecar still accepts, which is its job, and keeps the events for that backend on disk.
``down`` (503) when the spool cannot take input, ``stopping`` (503) during a graceful
shutdown: a load balancer or an SDK should send elsewhere (or hold on to its events).
Everything here is in memory (no backend work per call); the details need the read scope
(``common.health``), and backend errors have URL credentials stripped.
"""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from wafermon.router import Breaker

from ..common.health import health_response
from ..common.openapi import json_content, operation, ref
from .bodies import BackendStatus, Health, SpoolStatus


def backend_status(sc: Any) -> dict[str, BackendStatus]:
    router = sc.router
    if router is None:
        return {}
    return {
        name: BackendStatus(
            type=sc.types[name],
            breaker=str(state.breaker),  # type: ignore[arg-type]  # Breaker's values
            consecutive_failures=state.consecutive_failures,
            acked_seq=state.acked_seq,
            lag=router.lag(name),
            delivered_events=state.delivered_events,
            retries=state.retries,
            dead_lettered_events=state.dead_lettered_events,
            fallback_events=state.fallback_events,
            last_error=state.last_error,
        )
        for name, state in router.states.items()
    }


@operation(
    "health",
    "The spool and every backend's delivery state "
    "(no auth: status only; details with the read token).",
    {
        "200": json_content(ref("Health"), "ok, or degraded when a backend's circuit is open."),
        "503": json_content(ref("Health"), "down (the spool is unusable) or stopping."),
    },
)
async def healthz(request: Request) -> Response:
    sc = request.app.state.sidecar
    spool = sc.spool
    problem = sc.spool_problem()
    backends = backend_status(sc)
    status: Literal["ok", "degraded", "down", "stopping"]
    if problem is not None:
        status = "down"
    elif not sc.accepting:
        status = "stopping"
    elif any(b.breaker != Breaker.CLOSED or b.consecutive_failures for b in backends.values()):
        status = "degraded"  # from a backend's first failed attempt, not only once it opens
    else:
        status = "ok"
    body = Health(
        status=status,
        site_id=sc.site_id,
        spool=SpoolStatus(
            dir=str(sc.spool_dir),
            bytes=spool.size if spool else 0,
            max_bytes=sc.settings.spool.max_bytes,
            last_seq=spool.last_seq if spool else 0,
            segments=spool.segment_count if spool else 0,
            ok=problem is None,
            detail=problem or "",
        ),
        backends=backends,
    )
    return health_response(request, body, 200 if status in ("ok", "degraded") else 503)
