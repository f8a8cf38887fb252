"""Typed answer bodies: one msgspec Struct per response shape, which the handler builds and
encodes and from which the OpenAPI component is generated, so an answer and its documented
schema cannot drift apart.

Why msgspec: it is already the core's wire decoder, encodes a Struct faster than a dict goes
through orjson, and ``msgspec.json.schema_components`` writes JSON Schema 2020-12 (what
OpenAPI 3.1 speaks) for every Struct and the Structs they hold. Fields without a default are
``required``; ``X | UnsetType = UNSET`` is a field left out of the answer when not set (and
not required). Events stay the core codec's dictionaries, documented as the core's own
``Event`` schema (``EventJSON``). Answers a handler still builds as dictionaries (ingest,
alerting, trends) keep a hand-written schema; the host tests validate every documented
answer of the live hosts against the document either way.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.responses import Response

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
