"""The sidecar's answer bodies (``common.bodies``): the handlers build these Structs and the
OpenAPI components are generated from them."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from ..common.bodies import Body, IngestResult

Counter = Annotated[int, Meta(ge=0)]


class IngestResponse(Body, kw_only=True):  # mypy: error (with a default) comes first
    """Counts, and one result per event that was not accepted, in input order."""

    error: Annotated[str | UnsetType, Meta(description="Only when nothing was accepted (400).")] = (
        UNSET
    )
    accepted: Counter
    rejected: Counter
    results: list[IngestResult]


class BackendStatus(Body):
    type: Annotated[str, Meta(description="The backend's plugin type.")]
    breaker: Literal["closed", "half_open", "open"]
    consecutive_failures: Annotated[
        int, Meta(ge=0, description="Failed attempts since its last success (over 0: degraded).")
    ]
    acked_seq: Annotated[int, Meta(ge=0, description="Highest spool record it acknowledged.")]
    lag: Annotated[int, Meta(ge=0, description="Spool records it has not acknowledged.")]
    delivered_events: Counter
    retries: Counter
    dead_lettered_events: Counter
    fallback_events: Counter
    last_error: str | None


class SpoolStatus(Body):
    dir: str
    bytes: Counter
    max_bytes: Counter
    last_seq: Counter
    segments: Counter
    ok: bool
    detail: str


class Health(Body):
    """Without the read token only status; the rest needs the read scope."""

    status: Literal["ok", "degraded", "down", "stopping"]
    site_id: str | UnsetType = UNSET
    spool: SpoolStatus | UnsetType = UNSET
    backends: dict[str, BackendStatus] | UnsetType = UNSET
