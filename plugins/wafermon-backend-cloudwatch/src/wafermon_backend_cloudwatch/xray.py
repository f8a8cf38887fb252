"""X-Ray segment documents from events: a job is a segment, each subjob a subsegment of it.

Ids are derived from the job, never random, so a retried batch (at-least-once delivery) sends
documents with the same ids and X-Ray keeps one segment per job: the segment id from (site,
app, job id), a subsegment's from (site, app, subjob id), the trace id from (site, app, job
id) plus the start of the 2^20-second (~12-day) window the event falls in, because an X-Ray
trace id starts with a Unix time in hex and X-Ray refuses ones older than 30 days. A job whose
events straddle a window boundary is split into two traces; that is the price of ids that do
not depend on seeing the job's first event.

``started`` sends an in-progress document; ``finished``/``failed`` the complete one with the
same id (start = time - duration_s), which replaces it. ``failed`` marks ``fault`` with the
error as the cause. ``progress`` sends nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Container, Iterator
from typing import Any

import orjson

from wafermon import Event, Kind

WINDOW_S = 1 << 20
MAX_DOCUMENTS = 50  # per PutTraceSegments call
TEXT_MAX = 2000  # characters of an error message or stack kept in a document (64 KB cap)
_NAME_BAD = re.compile(r"[^\w\s.:/%&#=+\\\-@]")


def _hex(*parts: str, length: int) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def trace_id(event: Event, job_id: str) -> str:
    window = int(event.time.timestamp()) // WINDOW_S * WINDOW_S
    return f"1-{window:08x}-{_hex('trace', event.site_id, event.app.name, job_id, length=24)}"


def segment_id(event: Event, entity_id: str) -> str:
    return _hex("segment", event.site_id, event.app.name, entity_id, length=16)


def _name(text: str) -> str:
    return _NAME_BAD.sub("_", text)[:200] or "_"


def document(event: Event, origin: str | None = None) -> dict[str, Any] | None:
    """The segment (job) or subsegment (subjob) document for one event, or None."""
    if event.kind not in (Kind.STARTED, Kind.FINISHED, Kind.FAILED):
        return None
    entity = event.entity
    job_id = entity.id if entity.type == "job" else entity.parent_id
    assert job_id is not None  # a subjob always names its job (the model checks it)
    end = event.time.timestamp()
    annotations = {
        "site_id": event.site_id,
        "entity_id": entity.id,
        **({"business_key": entity.business_key} if entity.business_key else {}),
        **({"sub_key": entity.sub_key} if entity.sub_key else {}),
    }
    doc: dict[str, Any] = {
        "id": segment_id(event, entity.id),
        "trace_id": trace_id(event, job_id),
        "name": _name(event.app.name if entity.type == "job" else entity.sub_key or entity.id),
        "annotations": annotations,
        "metadata": {"wafermon": {"event_id": str(event.event_id), "kind": str(event.kind)}},
    }
    if entity.type == "subjob":
        doc["type"] = "subsegment"
        doc["parent_id"] = segment_id(event, job_id)
    elif origin:
        doc["origin"] = origin
    if event.kind == Kind.STARTED:
        doc["start_time"] = end
        doc["in_progress"] = True
    else:
        doc["start_time"] = end - (event.metrics.duration_s or 0.0)
        doc["end_time"] = end
    if event.kind == Kind.FAILED and event.error is not None:
        doc["fault"] = True
        doc["cause"] = {
            "exceptions": [
                {
                    "id": _hex("error", str(event.event_id), length=16),
                    "type": event.error.type[:TEXT_MAX],
                    "message": event.error.message[:TEXT_MAX],
                }
            ]
        }
    return doc


def documents(
    events: list[Event], origin: str | None = None, completed: Container[str] = ()
) -> list[str]:
    """Segment documents for a batch as JSON strings; a later event of the same entity in the
    batch wins (X-Ray keeps the last document per id). An in-progress document for an id in
    ``completed`` is left out: a late resend of a ``started`` event must not turn a finished
    job back into a running one."""
    by_id: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: e.sort_key):
        doc = document(event, origin)
        if doc is None or (doc.get("in_progress") and doc["id"] in completed):
            continue
        if doc.get("in_progress") and "end_time" in by_id.get(doc["id"], {}):
            continue  # same batch, finished first (equal times): keep the complete one
        by_id[doc["id"]] = doc
    return [orjson.dumps(doc).decode() for doc in by_id.values()]


def completed_ids(docs: list[str]) -> list[str]:
    """The ids of the complete (not in-progress) documents among ``docs``."""
    return [d["id"] for d in map(orjson.loads, docs) if "end_time" in d]


def chunks(docs: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(docs), MAX_DOCUMENTS):
        yield docs[i : i + MAX_DOCUMENTS]
