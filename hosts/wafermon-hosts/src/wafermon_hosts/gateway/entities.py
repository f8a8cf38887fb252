"""GET /v1/jobs, /v1/subjobs and /v1/jobs/{id}: current job and subjob state from the store.

The state is what ``wafermon.store.EntityState`` derives from the events (status, timings,
latest metrics); the internal merge stamps are not part of the answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from wafermon.codec import unstructure_event
from wafermon.errors import FieldValueError
from wafermon.store import ENTITY_SORTS, MAX_ENTITY_LIMIT, STATUS_RANK, EntityQuery

from ..common.bodies import BodyResponse
from ..common.errors import ApiError, bad_parameter
from ..common.openapi import error, json_content, operation, path_param, query_param, ref
from .archive import with_archived_events
from .bodies import Entity, EntityPage, JobDetail
from .openapi import COMMON_ERRORS, ENTITY_FILTERS, STORE_DOWN
from .params import Params

#: EntityQuery field -> query parameter, for naming the parameter in a 400.
PARAM_OF = {"site_id": "site", "start": "since", "end": "until"}
FILTERS = ("site", "app", "status", "business_key", "sub_key")
EVENTS_LIMIT = 1000
MAX_EVENTS_LIMIT = 10_000


def _entity_query(request: Request, entity_type: str) -> EntityQuery:
    allowed = {*FILTERS, "since", "until", "sort", "limit", "cursor"}
    if entity_type == "subjob":
        allowed.add("parent_id")
    params = Params(request, allowed)
    try:
        return EntityQuery(
            entity_type=entity_type,
            site_id=params.text("site"),
            app=params.text("app"),
            status=params.choice("status", tuple(STATUS_RANK)),
            business_key=params.text("business_key"),
            sub_key=params.text("sub_key"),
            parent_id=params.text("parent_id"),
            start=params.time("since"),
            end=params.time("until"),
            sort=params.choice("sort", ENTITY_SORTS, "-start_time"),
            limit=params.integer("limit", 100, 1, MAX_ENTITY_LIMIT),
            cursor=params.text("cursor"),
        )
    except FieldValueError as exc:
        raise bad_parameter(PARAM_OF.get(exc.field, exc.field), exc.message) from None


async def _list(request: Request, entity_type: str) -> Response:
    gw = request.app.state.gateway
    query = _entity_query(request, entity_type)
    page = await gw.call_store(gw.store.entities(query), PARAM_OF)
    return BodyResponse(
        EntityPage(items=[Entity.of(s) for s in page.items], next_cursor=page.next_cursor)
    )


@operation(
    "listJobs",
    "Jobs, newest start first by default.",
    {"200": json_content(ref("EntityPage"), "A page of jobs."), **COMMON_ERRORS, **STORE_DOWN},
    parameters=ENTITY_FILTERS,
)
async def jobs(request: Request) -> Response:
    return await _list(request, "job")


@operation(
    "listSubjobs",
    "Subjobs, optionally of one job (parent_id).",
    {"200": json_content(ref("EntityPage"), "A page of subjobs."), **COMMON_ERRORS, **STORE_DOWN},
    parameters=[*ENTITY_FILTERS, query_param("parent_id", "Only subjobs of this job.")],
)
async def subjobs(request: Request) -> Response:
    return await _list(request, "subjob")


@operation(
    "getJob",
    "A job (or subjob) with its subjobs and its events, oldest first.",
    {
        "200": json_content(ref("JobDetail"), "The job."),
        **COMMON_ERRORS,
        "404": error("No job or subjob has this id."),
        **STORE_DOWN,
    },
    parameters=[
        path_param("id", "The job's or subjob's id (may hold '/')."),
        query_param(
            "events_limit",
            "At most this many events (default 1000).",
            {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS_LIMIT},
        ),
    ],
)
async def job_detail(request: Request) -> Response:
    gw = request.app.state.gateway
    params = Params(request, {"events_limit"})
    limit = params.integer("events_limit", EVENTS_LIMIT, 1, MAX_EVENTS_LIMIT)
    entity_id = request.path_params["id"]
    detail = await gw.call_store(gw.store.job_detail(entity_id, events_limit=limit))
    if detail is None:
        raise ApiError(404, f"no job or subjob with id {entity_id!r}")
    detail = await with_archived_events(gw, detail, limit)
    return BodyResponse(
        JobDetail(
            job=Entity.of(detail.job),
            subjobs=[Entity.of(s) for s in detail.subjobs],
            events=[unstructure_event(e) for e in detail.events],
        )
    )
