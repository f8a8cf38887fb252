"""Central's routes: sites, merged job and subjob lists, job detail, unified events, health.

Every list answer carries ``sites``: each asked site's status (``ok``, ``rejected``,
``failed``, ``timed_out``, or ``done`` for a site whose list a cursor has exhausted), its
latency and why it is missing. A site that fails or is slow never fails the request: the answer
is 200 with the other sites' data. Only when every asked site refuses the request itself (400,
the client's fault) is the answer 400, naming the first such site.

``site`` selects gateways by their configured name (comma-separated; default: every site). It
is central's own parameter and is not passed on: inside a gateway, ``site`` would filter by
``site_id``.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import attrs
from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response

from wafermon import Problem
from wafermon.errors import FieldValueError
from wafermon.interfaces import MAX_QUERY_LIMIT, STATUSES
from wafermon.pages import decode_cursor
from wafermon.store import ENTITY_SORTS, MAX_ENTITY_LIMIT, STATUS_RANK

from ..common.bodies import BodyResponse
from ..common.errors import ApiError, bad_parameter
from ..common.health import health_response
from ..common.openapi import json_content, operation, path_param, query_param, ref
from ..gateway.params import Params
from .bodies import (
    CentralHealth,
    MergedEvents,
    MergedPage,
    SiteError,
    SiteHealth,
    SiteJobDetail,
    SiteRef,
    Sites,
    SiteStatus,
)
from .merge import (
    DONE,
    EntityOrder,
    SiteState,
    decode_composite,
    encode_composite,
    event_cursor,
    event_key,
    merge_entities,
    merge_events,
    plan,
)
from .openapi import COMMON_ERRORS, ENTITY_PARAMS, SITE, UNIFIED_PARAMS
from .sites import SiteAnswer

ENTITY_FILTERS = ("app", "status", "business_key", "sub_key", "since", "until")
EVENTS_LIMIT_MAX = 10_000


def _central(request: Request) -> Any:
    return request.app.state.central


def _refresh(request: Request) -> bool:
    """``Cache-Control: no-cache`` (or ``max-age=0``) asks for answers fresh from the sites."""
    value = request.headers.get("cache-control", "").lower()
    return "no-cache" in value or "max-age=0" in value


def _sites(central: Any, params: Params) -> list[str]:
    names = params.names("site")
    if names is None:
        return list(central.site_names)
    unknown = [n for n in names if n not in central.site_names]
    if unknown:
        have = ", ".join(central.site_names)
        raise bad_parameter("site", f"unknown site {unknown[0]!r} (sites: {have})")
    return names


def _all_rejected(answers: dict[str, SiteAnswer]) -> None:
    """400 (or 404) when every site asked refused the request itself: the client's fault."""
    if not answers or not all(a.status == "rejected" for a in answers.values()):
        return
    site, first = next(iter(answers.items()))
    body = first.body if isinstance(first.body, dict) else {}
    message = f"site {site}: {body.get('error') or first.error or f'HTTP {first.http_status}'}"
    problems = [
        Problem(str(p.get("path", "")), str(p.get("message", "")))
        for p in body.get("problems", [])
        if isinstance(p, dict)
    ]
    raise ApiError(404 if first.http_status == 404 else 400, message, problems)


def _entity_page_ok(body: Any, order: EntityOrder) -> None:
    for item in body["items"]:
        order.site_key(item)  # the sort value parses, the id is there
        if not isinstance(item["entity_id"], str):
            raise TypeError("entity_id")
    if not (body.get("next_cursor") is None or isinstance(body["next_cursor"], str)):
        raise TypeError("next_cursor")


def _job_detail_ok(body: Any) -> None:
    if not isinstance(body["job"], dict):
        raise TypeError("job")
    if not (isinstance(body["subjobs"], list) and isinstance(body["events"], list)):
        raise TypeError("subjobs or events")


def _event_page_ok(body: Any) -> None:
    for event in body["events"]:
        event_key(event)


def _checked(answer: SiteAnswer, check: Any, *args: Any) -> SiteAnswer:
    """A site's 200 answer that is not the page it should be counts as a failed site."""
    if answer.status != "ok":
        return answer
    try:
        check(answer.body, *args)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return attrs.evolve(
            answer, status="failed", body=None, error=f"the answer is not a valid page ({exc!r})"
        )
    return answer


def _note_partial(central: Any, route: str, answers: dict[str, SiteAnswer]) -> None:
    if any(a.missing for a in answers.values()):
        central.metrics.partial.labels(route).inc()


# -- GET /v1/sites -----------------------------------------------------------------------------


@operation(
    "sites",
    "The sites this central host reads.",
    {"200": json_content(ref("Sites"), "The configured sites."), **COMMON_ERRORS},
)
async def sites(request: Request) -> Response:
    central = _central(request)
    Params(request, set())
    return BodyResponse(
        Sites(
            site_id=central.site_id,
            sites=[
                SiteRef(name=s.name, url=s.url, timeout_s=central.settings.timeout_of(s))
                for s in central.settings.sites
            ],
        )
    )


# -- GET /v1/jobs, /v1/subjobs -----------------------------------------------------------------


async def _entities(request: Request, kind: str) -> Response:
    central = _central(request)
    path = f"/v1/{kind}s"
    allowed = {*ENTITY_FILTERS, "site", "sort", "limit", "cursor"}
    if kind == "subjob":
        allowed.add("parent_id")
    params = Params(request, allowed)
    names = _sites(central, params)
    params.choice("status", tuple(STATUS_RANK))
    params.time("since")
    params.time("until")
    sort = params.choice("sort", ENTITY_SORTS, "-start_time")
    limit = params.integer("limit", 100, 1, MAX_ENTITY_LIMIT)
    cursor = params.text("cursor")
    forward = [
        (k, v) for k in (*ENTITY_FILTERS, "parent_id") if (v := params.values.get(k)) is not None
    ]
    forward.append(("sort", sort))
    states: dict[str, SiteState | str] = (
        decode_composite(cursor, sort, names) if cursor else {n: SiteState() for n in names}
    )
    refresh = _refresh(request)

    def ask(fetch: Any) -> tuple[str, list[tuple[str, str]]]:
        extra = [("limit", str(fetch.limit))]
        if fetch.cursor is not None:
            extra.append(("cursor", fetch.cursor))
        return path, forward + extra

    active = {n: s for n, s in states.items() if isinstance(s, SiteState)}
    plans = {n: plan(s, limit) for n, s in active.items()}
    answers: dict[str, SiteAnswer] = {}

    # Rebase: a site that has returned most of a long page gets a cursor just after it first.
    rebase = {n: p[0] for n, p in plans.items() if p[0] is not None}
    if rebase:
        got = await central.fan_out({n: ask(f) for n, f in rebase.items()}, refresh=refresh)
        for n, answer in got.items():
            if answer.status != "ok":
                answers[n] = answer
                del active[n]
                continue
            next_cursor = answer.body.get("next_cursor")
            if next_cursor is None:
                states[n] = DONE
                del active[n]
            else:
                active[n] = SiteState(next_cursor, 0, active[n].last)
                plans[n] = plan(active[n], limit)

    got = await central.fan_out({n: ask(plans[n][1]) for n in active}, refresh=refresh)
    order = EntityOrder(sort)
    got = {n: _checked(a, _entity_page_ok, order) for n, a in got.items()}
    answers.update(got)
    _all_rejected(answers)
    pages = {n: (active[n], a.body) for n, a in got.items() if a.status == "ok"}
    picked, new_states = merge_entities(order, limit, pages)
    states.update(new_states)
    counts: dict[str, int] = {}
    for site, _item in picked:
        counts[site] = counts.get(site, 0) + 1

    # Sites that did not answer keep their place in the cursor but do not keep it alive.
    more = any(states[n] != DONE for n in pages)
    summaries: dict[str, SiteStatus] = {}
    for n in names:
        if n in answers:
            summaries[n] = answers[n].summary(count=counts.get(n, 0))
        else:
            summaries[n] = SiteStatus(status="done", count=0)
    _note_partial(central, path, answers)
    return BodyResponse(
        MergedPage(
            items=[{**item, "site": site} for site, item in picked],
            next_cursor=encode_composite(sort, states) if more else None,
            sites=summaries,
        )
    )


def _list_op(operation_id: str, summary: str, extra: list[dict[str, Any]]) -> Any:
    return operation(
        operation_id,
        summary,
        {
            "200": json_content(ref("MergedPage"), "One merged page and each site's status."),
            **COMMON_ERRORS,
        },
        parameters=[*ENTITY_PARAMS, *extra],
    )


@_list_op("jobs", "Jobs of one, several or all sites, merged by the sort.", [])
async def jobs(request: Request) -> Response:
    return await _entities(request, "job")


@_list_op(
    "subjobs",
    "Subjobs of one, several or all sites, merged by the sort.",
    [query_param("parent_id", "Subjobs of this job.")],
)
async def subjobs(request: Request) -> Response:
    return await _entities(request, "subjob")


# -- GET /v1/jobs/{id} -------------------------------------------------------------------------


@operation(
    "jobDetail",
    "A job (or subjob) with its subjobs and events, from the site that has it.",
    {
        "200": json_content(ref("SiteJobDetail"), "The job and the site that has it."),
        **COMMON_ERRORS,
        "404": json_content(
            ref("SiteError"), "No site that answered has this id (missing sites are named)."
        ),
    },
    parameters=[
        path_param("id", "The job's or subjob's id (may hold '/')."),
        SITE,
        query_param(
            "events_limit",
            "At most this many events (default 1000).",
            {"type": "integer", "minimum": 1, "maximum": EVENTS_LIMIT_MAX},
        ),
    ],
)
async def job_detail(request: Request) -> Response:
    central = _central(request)
    params = Params(request, {"site", "events_limit"})
    names = _sites(central, params)
    limit = params.integer("events_limit", 1000, 1, EVENTS_LIMIT_MAX)
    entity_id = request.path_params["id"]
    path = "/v1/jobs/" + quote(entity_id, safe="")
    forward = [("events_limit", str(limit))]
    answers = await central.fan_out({n: (path, forward) for n in names}, refresh=_refresh(request))
    answers = {n: _checked(a, _job_detail_ok) for n, a in answers.items()}
    summaries = {n: a.summary() for n, a in answers.items()}
    _note_partial(central, "/v1/jobs/{id}", answers)
    for n in names:
        answer = answers[n]
        if answer.status == "ok":
            body = answer.body
            return BodyResponse(
                SiteJobDetail(
                    job=body["job"],
                    subjobs=body["subjobs"],
                    events=body["events"],
                    site=n,
                    sites=summaries,
                )
            )
    rejected = [a for a in answers.values() if a.status == "rejected" and a.http_status != 404]
    if rejected:
        _all_rejected({rejected[0].site: rejected[0]})
    missing = [n for n, a in answers.items() if a.missing]
    message = f"no job or subjob with id {entity_id!r}"
    if missing:
        message += f" on the sites that answered (missing: {', '.join(missing)})"
    return BodyResponse(SiteError(error=message, sites=summaries), status_code=404)


# -- GET /v1/data/unified ----------------------------------------------------------------------


@operation(
    "unified",
    "Unified events of one, several or all sites, merged by (time, event_id).",
    {
        "200": json_content(ref("MergedEvents"), "Merged events and each site's status."),
        **COMMON_ERRORS,
    },
    parameters=UNIFIED_PARAMS,
)
async def unified(request: Request) -> Response:
    central = _central(request)
    allowed = {
        "since", "until", "site", "app", "entity_type", "entity_id", "status",
        "business_key", "sub_key", "limit", "cursor", "sources",
    }  # fmt: skip
    params = Params(request, allowed)
    names = _sites(central, params)
    params.time("since")
    params.time("until")
    params.choice("entity_type", ("job", "subjob"))
    params.choice("status", tuple(STATUSES))
    params.names("sources")
    limit = params.integer("limit", 100, 1, MAX_QUERY_LIMIT)
    cursor = params.text("cursor")
    if cursor is not None:
        try:
            decode_cursor(cursor)
        except FieldValueError as exc:
            raise bad_parameter("cursor", exc.message) from None
    forward = [(k, v) for k, v in params.values.items() if k not in ("site", "limit")]
    forward.append(("limit", str(limit)))
    answers = await central.fan_out(
        {n: ("/v1/data/unified", forward) for n in names}, refresh=_refresh(request)
    )
    answers = {n: _checked(a, _event_page_ok) for n, a in answers.items()}
    _all_rejected(answers)
    ok = {n: a for n, a in answers.items() if a.status == "ok"}
    events, more = merge_events((a.body for a in ok.values()), limit)
    counts: dict[str, int] = {}
    for a in ok.values():
        counts[a.site] = len(a.body.get("events") or [])
    summaries = {
        n: a.summary(count=counts[n], sources=a.body.get("sources", {}))
        if a.status == "ok"
        else a.summary()
        for n, a in answers.items()
    }
    _note_partial(central, "/v1/data/unified", answers)
    return BodyResponse(
        MergedEvents(
            events=events,
            next_cursor=event_cursor(events[-1]) if more and events else None,
            sites=summaries,
        )
    )


# -- GET /v1/healthz ---------------------------------------------------------------------------


@operation(
    "health",
    "Each site's reachability, status and latency "
    "(no auth: status only; details with the read token).",
    {
        "200": json_content(ref("CentralHealth"), "ok, or degraded when a site is not ok."),
        "503": json_content(ref("CentralHealth"), "down: no site is reachable."),
    },
)
async def healthz(request: Request) -> Response:
    central = _central(request)
    answers = await central.health.get()
    report: dict[str, SiteHealth] = {}
    for n, a in answers.items():
        body = a.body if isinstance(a.body, dict) else {}
        reachable = a.http_status is not None and a.http_status not in (401, 403)
        report[n] = SiteHealth(
            url=central.clients[n].url,
            reachable=reachable,
            status=body.get("status") if reachable else None,
            latency_ms=round(a.latency_ms, 2),
            error=a.error if a.error and not (reachable and a.http_status == 503) else UNSET,
        )
        central.metrics.site_up.labels(n).set(1 if reachable else 0)
    status: Literal["ok", "degraded", "down"]
    if not any(e.reachable for e in report.values()):
        status = "down"
    elif all(e.reachable and e.status == "ok" for e in report.values()):
        status = "ok"
    else:
        status = "degraded"
    health = CentralHealth(status=status, site_id=central.site_id, sites=report)
    return health_response(request, health, 503 if status == "down" else 200)
