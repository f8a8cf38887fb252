"""POST /v1/ingest/events (and /v1/ingest/events:batch): validate, spool, then answer 202.

Bad events never cost good ones: they are reported ``rejected`` with JSON paths while the rest
are appended to the spool as one record, as the JSON text they arrived in (one line each). 202
is sent only after that record is fsynced, so every event a client saw accepted survives kill
-9 and reaches every backend. The answer carries the counts and one result per event that was
not accepted (its index in the body, id, status, errors); an accepted event needs no result.
When nothing in the body is valid the answer is 400 with the same shape and nothing is
written. A full spool is 503 with Retry-After: nothing of that request was acknowledged, the
client sends it again later.

No Event object is built here unless a plugin implements ``transform_events``.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response

from wafermon.ingest import admit
from wafermon.wire import WireBatch

from ..common.bodies import BodyResponse, IngestResult
from ..common.errors import ApiError
from ..common.limits import ingest_body
from ..common.openapi import EVENTS_BODY, error, json_content, operation, ref, retry_later
from .bodies import IngestResponse
from .runtime import RETRY_AFTER_S

NOTHING_VALID = "no event in the body is valid; nothing was stored"


def _documented(operation_id: str, summary: str) -> Any:
    return operation(
        operation_id,
        summary,
        {
            "202": json_content(
                ref("IngestResponse"),
                "The accepted events are on disk (fsynced); every event's outcome, in input order.",
            ),
            "400": json_content(
                {"oneOf": [ref("IngestResponse"), ref("Error")]},
                "Nothing was stored: no event is valid (per-event results), or the body is "
                "unreadable as a whole (invalid JSON or UTF-8, nested too deeply).",
            ),
            "403": error("The token is not the sidecar's ingest token."),
            "413": error("The body is larger than sidecar.max_body_bytes."),
            "415": error("Unsupported Content-Type."),
            "422": error("More events than sidecar.max_batch_events."),
            "503": retry_later(
                "Nothing was stored: the spool is full or failing, or the sidecar is shutting "
                "down; send the same body again after Retry-After seconds."
            ),
        },
        request_body=EVENTS_BODY,
    )


@_documented(
    "ingestEvents", "Accept events into the durable spool (one event, a JSON array or NDJSON)."
)
async def ingest(request: Request) -> Response:
    sc = request.app.state.sidecar
    if not sc.accepting:
        sc.metrics.refused.labels("stopping").inc()
        raise ApiError(
            503,
            "the sidecar is shutting down; nothing was stored, retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    # The spool takes the text: the decoded events are kept only for a plugin that transforms.
    keep = sc.plugins.transforms_events
    async with ingest_body(request, sc.body_budget, sc.settings, keep_events=keep) as batch:
        return await _spool(sc, batch)


@_documented("ingestEventsBatch", "The same as POST /v1/ingest/events (kept for older SDKs).")
async def ingest_batch(request: Request) -> Response:
    return await ingest(request)


async def _spool(sc: Any, batch: WireBatch) -> Response:
    # The spool keeps every copy (the backends deduplicate), so no dedupe here.
    admitted = admit(batch, sc.plugins, host="sidecar", site_id=sc.site_id, dedupe=False)
    record = admitted.batch()  # the text each event arrived in, kept where it can be
    accepted = batch.total - len(admitted.results)
    if accepted:
        await sc.append(record)  # returns once fsynced; ApiError 503 if the spool refuses

    rejected = batch.total - accepted
    if accepted:
        sc.metrics.accepted.inc(accepted)
    if rejected:
        sc.metrics.rejected.inc(rejected)
    answer = IngestResponse(
        error=UNSET if accepted else NOTHING_VALID,
        accepted=accepted,
        rejected=rejected,
        results=[IngestResult.of(v) for v in admitted.results],
    )
    return BodyResponse(answer, status_code=202 if accepted else 400)
