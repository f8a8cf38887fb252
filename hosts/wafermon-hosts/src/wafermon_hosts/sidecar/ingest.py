"""POST /v1/ingest/events (and /v1/ingest/events:batch): validate, spool, then answer 202.

The answer has one result per input event, in input order. Bad events never cost good ones:
they are reported ``rejected`` with JSON paths while the rest are appended to the spool as
one record. 202 is sent only after that record is fsynced, so every event a client saw
``accepted`` survives kill -9 and reaches every backend. When nothing in the body is valid
the answer is 400 with the same shape and nothing is written. A full spool is 503 with
Retry-After: nothing of that request was acknowledged, the client sends it again later.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from wafermon import Problem

from ..common.errors import ApiError, JSONResponse
from ..common.limits import read_event_batch
from .runtime import RETRY_AFTER_S

DROPPED = "dropped by a transform_events plugin"
NOTHING_VALID = "no event in the body is valid; nothing was stored"


def _result(index: int, event_id: Any, status: str, errors: list[Problem] = ()) -> dict[str, Any]:
    return {
        "index": index,
        "event_id": None if event_id is None else str(event_id),
        "status": status,
        "errors": [{"path": p.path, "message": p.message} for p in errors],
    }


async def ingest(request: Request) -> Response:
    sc = request.app.state.sidecar
    if not sc.accepting:
        sc.metrics.refused.labels("stopping").inc()
        raise ApiError(
            503,
            "the sidecar is shutting down; nothing was stored, retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    batch = await read_event_batch(
        request, max_bytes=sc.settings.max_body_bytes, max_events=sc.settings.max_batch_events
    )
    total = len(batch.events) + len(batch.rejected)

    results: list[dict[str, Any]] = [{}] * total  # every slot is filled below
    for bad in batch.rejected:
        results[bad.index] = _result(bad.index, bad.event_id, "rejected", bad.problems)
    events = batch.events
    if events:
        events = sc.plugins.transform_events(list(events), host="sidecar", site_id=sc.site_id)
    kept = {e.event_id for e in events}
    accepted = 0
    for index, event in zip(batch.indexes, batch.events, strict=True):
        if event.event_id in kept:
            results[index] = _result(index, event.event_id, "accepted")
            accepted += 1
        else:
            results[index] = _result(index, event.event_id, "rejected", [Problem("$", DROPPED)])
    if accepted:
        await sc.append(events)  # returns once fsynced; ApiError 503 if the spool refuses

    rejected = total - accepted
    if accepted:
        sc.metrics.events.labels("accepted").inc(accepted)
    if rejected:
        sc.metrics.events.labels("rejected").inc(rejected)
    body_out: dict[str, Any] = {"accepted": accepted, "rejected": rejected, "results": results}
    if not accepted:
        body_out = {"error": NOTHING_VALID, **body_out}
    return JSONResponse(body_out, status_code=202 if accepted else 400)
