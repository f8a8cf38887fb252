"""Typed answer bodies: one msgspec Struct per response shape, which the handler builds and
encodes and from which the OpenAPI component is generated, so an answer and its documented
schema cannot drift apart.

Why msgspec: it is already the core's wire decoder (no new dependency), encodes Structs
natively, and ``msgspec.json.schema_components`` writes JSON Schema 2020-12 (what OpenAPI 3.1
speaks) for every Struct and the Structs they hold. Fields without a default are
``required``; ``X | UnsetType = UNSET`` is a field left out of the answer when not set (and
not required). Events stay the core codec's dictionaries, documented as the core's own
``Event`` schema (``EventJSON``). The error body is still built by ``common.errors`` as a
dictionary (``Error`` documents it); the host tests validate every documented answer of the
live hosts, errors included, against the document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from starlette.responses import Response

from wafermon.ingest import Verdict

#: Where ``schema_components`` points its ``$ref`` (``common.openapi.REF``).
REF = "#/components/schemas/"

#: One event as the core's codec writes it (``unstructure_event``), documented as ``Event``.
EventJSON = Annotated[dict[str, Any], msgspec.Meta(extra_json_schema={"$ref": REF + "Event"})]


class Body(msgspec.Struct, kw_only=True):
    """Base of every answer Struct: keyword-only fields, declared in answer order."""


def schemas(*types: type[msgspec.Struct]) -> dict[str, Any]:
    """The OpenAPI components of ``types`` and every Struct they hold, by class name."""
    _refs, components = msgspec.json.schema_components(types, ref_template=REF + "{name}")
    return components


_encoder = msgspec.json.Encoder()


class BodyResponse(Response):
    """A Struct (or anything msgspec encodes) as ``application/json``."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


class Problem(Body):
    path: Annotated[str, msgspec.Meta(description="JSON path or parameter name.")]
    message: str


class Error(Body):
    """The error body of every host (``common.errors``)."""

    error: str
    problems: list[Problem] | msgspec.UnsetType = msgspec.UNSET


class IngestResult(Body):
    """An event of an ingest body that was not accepted."""

    index: Annotated[int, Meta(description="0-based position in the body.")]
    event_id: Annotated[str | None, Meta(description="null if it could not be read.")]
    status: Annotated[
        Literal["rejected", "duplicate"],
        Meta(description="duplicate (gateway): a copy of a stored event, not stored again."),
    ]
    errors: Annotated[
        list[Problem], Meta(description="Why it was rejected (JSON paths); empty otherwise.")
    ]

    @classmethod
    def of(cls, verdict: Verdict) -> IngestResult:
        return cls(
            index=verdict.index,
            event_id=verdict.event_id,
            status=verdict.status,  # type: ignore[arg-type]  # the ingest rules' statuses
            errors=[Problem(path=p.path, message=p.message) for p in verdict.problems],
        )
