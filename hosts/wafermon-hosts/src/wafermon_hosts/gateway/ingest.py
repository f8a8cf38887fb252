"""POST /v1/ingest/managed: store a batch in the managed store, report on every event.

The answer has one result per input event, in input order, so a sender (a sidecar, an SDK)
knows exactly which events to drop, keep or dead-letter. Bad events never cost good ones:
they are reported ``rejected`` with JSON paths while the rest are stored. Repeated events
(at-least-once delivery) are ``duplicate``; within one batch, the first copy is the one stored.
Only a body that is unreadable as a whole is refused outright (400).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from wafermon import (
    DecodedBatch,
    Event,
    PermanentError,
    Problem,
)

from ..common.errors import JSONResponse
from ..common.limits import read_event_batch

DROPPED = "dropped by a transform_events plugin"


def _result(index: int, event_id: Any, status: str, errors: list[Problem] = ()) -> dict[str, Any]:
    result: dict[str, Any] = {
        "index": index,
        "event_id": None if event_id is None else str(event_id),
        "status": status,
    }
    if errors:
        result["errors"] = [{"path": p.path, "message": p.message} for p in errors]
    return result


async def ingest(request: Request) -> Response:
    gw = request.app.state.gateway
    batch = await read_event_batch(
        request, max_bytes=gw.settings.max_body_bytes, max_events=gw.settings.max_batch_events
    )
    total = len(batch.events) + len(batch.rejected)

    results: list[dict[str, Any]] = [{}] * total  # every slot is filled below
    for bad in batch.rejected:
        results[bad.index] = _result(bad.index, bad.event_id, "rejected", bad.problems)
    # One copy per event_id goes on; later copies in the same batch are duplicates of it.
    first: dict[UUID, int] = {}
    unique: list[Event] = []
    for index, event in zip(batch.indexes, batch.events, strict=True):
        if event.event_id in first:
            results[index] = _result(index, event.event_id, "duplicate")
        else:
            first[event.event_id] = index
            unique.append(event)
    transformed = gw.plugins.transform_events(unique, host="gateway", site_id=gw.site_id)
    to_store = list({e.event_id: e for e in transformed}.values())

    outcome = await _store(gw, to_store, _bodies(gw, batch, to_store))
    dropped = ("rejected", [Problem("$", DROPPED)])
    for event_id, index in first.items():
        status, errors = outcome.get(event_id, dropped)
        results[index] = _result(index, event_id, status, errors)
    gw.stream.publish([e for e in to_store if outcome[e.event_id][0] == "accepted"])

    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for result in results:
        counts[result["status"]] += 1
    for outcome_name, n in counts.items():
        if n:
            gw.metrics.events.labels(outcome_name).inc(n)
    return JSONResponse(
        {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "rejected": counts["rejected"],
            "results": results,
        }
    )


def _bodies(gw: Any, batch: DecodedBatch, events: list[Event]) -> list[bytes | None] | None:
    """The NDJSON line each event to store was decoded from, for a store that takes them.

    Only events that are the very objects decoded from the body get their line: an event a
    transform_events plugin replaced gets None (the store encodes it). Matching by identity is
    sound because every decoded event stays alive in ``batch`` meanwhile.
    """
    if batch.lines is None or not gw.store_takes_bodies:
        return None
    lines = batch.lines
    line_of = {id(e): lines[i] for i, e in zip(batch.indexes, batch.events, strict=True)}
    return [line_of.get(id(e)) for e in events]


async def _store(
    gw: Any, events: list[Event], bodies: list[bytes | None] | None
) -> dict[UUID, tuple[str, list[Problem]]]:
    """event_id -> (status, problems) for each event handed to the store."""
    if not events:
        return {}
    try:
        call = gw.store.ingest(events) if bodies is None else gw.store.ingest(events, bodies=bodies)
        stored = await gw.call_store(call)
    except PermanentError as exc:
        # The store refused some events for good; the contract says the others were stored.
        refused = None if exc.event_ids is None else {str(i) for i in exc.event_ids}
        problem = [Problem("$", f"the managed store refused it: {exc}")]
        return {
            e.event_id: ("rejected", problem)
            if refused is None or str(e.event_id) in refused
            else ("accepted", [])
            for e in events
        }
    return {
        e.event_id: _ACCEPTED if new else _DUPLICATE for e, new in zip(events, stored, strict=True)
    }


_ACCEPTED: tuple[str, list[Problem]] = ("accepted", [])  # shared: never modified
_DUPLICATE: tuple[str, list[Problem]] = ("duplicate", [])
