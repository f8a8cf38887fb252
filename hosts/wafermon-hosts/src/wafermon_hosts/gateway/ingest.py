"""POST /v1/ingest/managed: store a batch in the managed store, report what was not stored.

The answer carries the counts and one result per event that was not accepted (its index in
the body, id, status and errors), so a sender (a sidecar, an SDK) knows exactly which events
to drop, keep or dead-letter. Bad events never cost good ones: they are reported ``rejected``
with JSON paths while the rest are stored. Repeated events (at-least-once delivery) are
``duplicate``; within one batch, the first copy is the one stored. Only a body that is
unreadable as a whole is refused outright (400).

Events are validated once by the fast decoder and stored with the JSON text they arrived in.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from wafermon import PermanentError, Problem
from wafermon.ingest import Verdict, admit, verdict
from wafermon.wire import WireBatch

from ..common.bodies import BodyResponse, IngestResult
from ..common.limits import ingest_body
from ..common.openapi import EVENTS_BODY, error, json_content, operation, ref
from .bodies import IngestResponse
from .openapi import STORE_DOWN


@operation(
    "ingest",
    "Store a batch of events in the managed store; one result per event.",
    {
        "200": json_content(ref("IngestResponse"), "Every event's outcome, in input order."),
        "400": error("The body as a whole is unreadable."),
        "413": error("The body is larger than gateway.max_body_bytes."),
        "415": error("Unsupported Content-Type."),
        "422": error("More events than gateway.max_batch_events."),
        **STORE_DOWN,
    },
    request_body=EVENTS_BODY,
)
async def ingest(request: Request) -> Response:
    gw = request.app.state.gateway
    async with ingest_body(request, gw.body_budget, gw.settings) as batch:
        return await _ingest(gw, batch)


async def _ingest(gw: Any, batch: WireBatch) -> Response:
    counts, not_accepted = await store_batch(gw, batch)
    for outcome_name, n in counts.items():
        if n:
            gw.metrics.events.labels(outcome_name).inc(n)
    return BodyResponse(
        IngestResponse(
            accepted=counts["accepted"],
            duplicates=counts["duplicate"],
            rejected=counts["rejected"],
            results=[IngestResult.of(v) for v in not_accepted],
        )
    )


async def store_batch(gw: Any, batch: WireBatch) -> tuple[dict[str, int], list[Verdict]]:
    """Store a decoded batch: counts per outcome (accepted, duplicate, rejected) and one
    result per event not accepted, in input order. HTTP ingest and the stream consumers
    (gateway.streams) both store through here. ApiError 503 when the store is down.

    The rules (rejected items, one copy per event_id, transform_events) are
    ``wafermon.ingest.admit``'s; the store's own verdicts are added here."""
    admitted = admit(batch, gw.plugins, host="gateway", site_id=gw.site_id, dedupe=True)
    # Without a transform no Event is built: the store takes the wire events and their text.
    to_store: list[Any] = admitted.wire if admitted.events is None else admitted.events
    outcome = await _store(gw, to_store, admitted.lines, wire=admitted.events is None)
    results = admitted.results
    if outcome is None:  # every event new: the common case, no work per event
        accepted, lines = to_store, admitted.lines
    else:
        index_of = admitted.index_of
        for event, (status, errors) in zip(to_store, outcome, strict=True):
            index = index_of.get(str(event.event_id))
            if status != "accepted" and index is not None:
                results.append(verdict(index, event.event_id, status, errors))
        kept = [k for k, (status, _) in enumerate(outcome) if status == "accepted"]
        accepted, lines = [to_store[k] for k in kept], [admitted.lines[k] for k in kept]
    gw.stream.publish(accepted, lines)
    if gw.alerting is not None:
        gw.alerting.observe(accepted)  # stream time: the site's watermark

    counts = {"accepted": batch.total - len(results), "duplicate": 0, "rejected": 0}
    for result in results:
        counts[result.status] += 1
    results.sort(key=lambda result: result.index)
    return counts, results


async def _store(
    gw: Any, events: list[Any], bodies: list[bytes | None], *, wire: bool
) -> list[tuple[str, list[Problem]]] | None:
    """(status, problems) of each event handed to the store, in order, or None when every one
    was stored as new (``wire``: the fast decoder's events, each with its text, handed to
    ``ingest_wire``; else Events)."""
    if not events:
        return None
    try:
        if wire:
            stored = await gw.call_store(gw.store.ingest_wire(events, bodies))
        else:
            stored = await gw.call_store(gw.store.ingest(events, bodies=bodies))
    except PermanentError as exc:
        # The store refused some events for good; the contract says the others were stored.
        refused = None if exc.event_ids is None else {str(i) for i in exc.event_ids}
        problem = [Problem("$", f"the managed store refused it: {exc}")]
        return [
            ("rejected", problem) if refused is None or str(e.event_id) in refused else _ACCEPTED
            for e in events
        ]
    if all(stored):
        return None
    return [_ACCEPTED if new else _DUPLICATE for new in stored]


_ACCEPTED: tuple[str, list[Problem]] = ("accepted", [])  # shared: never modified
_DUPLICATE: tuple[str, list[Problem]] = ("duplicate", [])
