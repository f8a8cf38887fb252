"""Central's answer bodies (``common.bodies``): the handlers build these Structs and the OpenAPI
components are generated from them.

What central passes on from a gateway (entities, alerts, events) stays the gateway's JSON and
is documented by the gateway's own schema (``gateway.bodies`` for entities), so the two
documents cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType, field

from ..common.bodies import REF, Body, EventJSON
from ..gateway.bodies import Entity, Trend

# A gateway's JSON object passed on as it came, documented as the component it is.
EntityJSON = Annotated[dict[str, Any], Meta(extra_json_schema={"$ref": REF + "Entity"})]
SiteEntityJSON = Annotated[dict[str, Any], Meta(extra_json_schema={"$ref": REF + "SiteEntity"})]
SiteAlertJSON = Annotated[
    dict[str, Any],
    Meta(extra_json_schema={"allOf": [{"$ref": REF + "Alert"}, {"$ref": REF + "SiteAlert"}]}),
]


class SiteEntity(Entity):
    """A gateway's job or subjob, with the site that has it."""

    site: Annotated[str, Meta(description="The site's name.")]


class SiteStatus(Body):
    """How one site answered (every central answer lists each site it asked)."""

    status: Annotated[
        Literal["ok", "rejected", "failed", "timed_out", "done"],
        Meta(description="done: a cursor had already exhausted this site's list."),
    ]
    latency_ms: float | UnsetType = UNSET
    cached: bool | UnsetType = UNSET
    error: Annotated[str | UnsetType, Meta(description="Why the site is missing (if it is).")] = (
        UNSET
    )
    count: Annotated[
        int | UnsetType, Meta(description="Items or events this site contributed.")
    ] = UNSET
    sources: Annotated[
        dict[str, Any] | UnsetType,
        Meta(
            description="/v1/data/unified: the site's own per-source statuses (SourceStatus); "
            "/v1/trends/sources: its trend sources."
        ),
    ] = UNSET


class MergedPage(Body):
    items: list[SiteEntityJSON]
    next_cursor: str | None
    sites: dict[str, SiteStatus]


class SiteAlert(Body):
    """Only documents the site central adds to a gateway's alert (``Alert``)."""

    site: str


class MergedAlertPage(Body):
    alerts: list[SiteAlertJSON]
    next_cursor: str | None
    sites: dict[str, SiteStatus]


class MergedEvents(Body):
    events: list[EventJSON]
    next_cursor: str | None
    sites: dict[str, SiteStatus]


class SiteJobDetail(Body):
    job: EntityJSON
    subjobs: list[EntityJSON]
    events: list[EventJSON]
    site: str
    sites: dict[str, SiteStatus]


class SiteError(Body):
    """The error body (``Error``) with each asked site's status."""

    error: str
    sites: dict[str, SiteStatus]


class SiteTrend(Trend):
    """One site's trend: its gateway's answer (checked against ``Trend``), with the site."""

    sites: dict[str, SiteStatus] = field(default_factory=dict)


class SiteTrendSources(Body):
    """Per site: its status and, when ok, its trend sources (``sources``)."""

    sites: dict[str, SiteStatus]


class SiteRef(Body):
    name: str
    url: str
    timeout_s: float


class Sites(Body):
    site_id: str
    sites: list[SiteRef]


class SiteHealth(Body):
    url: str
    reachable: bool
    status: str | None
    latency_ms: float
    error: str | UnsetType = UNSET


class CentralHealth(Body):
    """Without the read token only status; the rest needs the read scope."""

    status: Literal["ok", "degraded", "down"]
    site_id: str | UnsetType = UNSET
    sites: dict[str, SiteHealth] | UnsetType = UNSET


#: The components central's document takes from these types.
TYPES = (SiteEntity, SiteAlert, MergedPage, MergedAlertPage, MergedEvents, SiteJobDetail, SiteError,
         SiteTrend, SiteTrendSources, Sites, CentralHealth)  # fmt: skip
