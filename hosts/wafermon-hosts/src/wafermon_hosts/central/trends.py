"""GET /v1/trends (one site's trend, passed through) and GET /v1/trends/sources (every site's).

A trend belongs to one site (its gateway's trend sources), so ``/v1/trends`` needs exactly one
``site`` and forwards everything else to that gateway's ``/v1/trends``; the gateway checks the
parameters and bounds the answer, and its 400 comes back as central's 400 naming the same
parameter. ``/v1/trends/sources`` asks every site (or the ``site`` list) at once; a site that
fails or has no trend route is named in ``sites``, the others still answer.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..common.bodies import BodyResponse
from ..common.errors import ApiError, bad_parameter
from ..common.openapi import declared, json_content, operation, query_param, ref
from ..gateway.params import Params
from ..gateway.trends import SOURCE_ERRORS
from ..gateway.trends import trends as _gateway_trends
from .bodies import SiteStatus, SiteTrend, SiteTrendSources
from .openapi import COMMON_ERRORS, SITE
from .routes import _all_rejected, _central, _refresh, _sites

#: The gateway's parameters, passed on as they are (central's ``site`` picks the gateway).
FORWARDED = ("source", "metric", "stat", "app", "by", "since", "until", "period")


@operation(
    "trendSources",
    "Each site's trend sources (what its gateway's /v1/trends/sources lists).",
    {"200": json_content(ref("SiteTrendSources"), "Per site."), **COMMON_ERRORS},
    parameters=[SITE],
)
async def sources(request: Request) -> Response:
    central = _central(request)
    names = _sites(central, Params(request, {"site"}))
    answers = await central.fan_out(
        {n: ("/v1/trends/sources", []) for n in names}, refresh=_refresh(request)
    )
    sites: dict[str, SiteStatus] = {}
    for name, answer in answers.items():
        found = answer.body.get("sources") if isinstance(answer.body, dict) else None
        if answer.status == "ok" and isinstance(found, dict):
            sites[name] = answer.summary(sources=found)
        elif answer.status == "rejected" and answer.http_status == 404:
            sites[name] = answer.summary(sources={})  # a gateway without trends
        else:
            sites[name] = answer.summary()
    return BodyResponse(SiteTrendSources(sites=sites))


#: The gateway's own parameters but ``site`` (which is central's here: the gateway).
_GATEWAY_OPERATION = declared(_gateway_trends)
assert _GATEWAY_OPERATION is not None  # the gateway's handler is @operation-declared
_GATEWAY_PARAMETERS = [p for p in _GATEWAY_OPERATION.parameters if p["name"] != "site"]


@operation(
    "trends",
    "One site's trend: its gateway's /v1/trends answer, with the site.",
    {
        "200": json_content(ref("SiteTrend"), "The gateway's series, oldest point first."),
        **COMMON_ERRORS,
        **SOURCE_ERRORS,
    },
    parameters=[
        {**query_param("site", "The site (one of /v1/sites) whose gateway answers."),
         "required": True},
        *_GATEWAY_PARAMETERS,
    ],
)  # fmt: skip
async def trends(request: Request) -> Response:
    central = _central(request)
    params = Params(request, {"site", *FORWARDED})
    if params.text("site") is None or len(names := _sites(central, params)) != 1:
        raise bad_parameter("site", "name exactly one site: a trend is one site's metrics")
    [name] = names
    forward = [(k, v) for k, v in params.values.items() if k in FORWARDED]
    answer = (await central.fan_out({name: ("/v1/trends", forward)}, refresh=_refresh(request)))[
        name
    ]
    _all_rejected({name: answer})  # the gateway's 400 (bad parameter, unknown source) as ours
    if answer.status == "ok":
        try:
            trend = msgspec.convert(answer.body, SiteTrend)
        except msgspec.ValidationError as exc:
            raise ApiError(502, f"site {name}: the answer is not a trend ({exc})") from None
        trend.sites = {name: answer.summary()}
        return BodyResponse(trend)
    status = 504 if answer.status == "timed_out" else 502
    raise ApiError(status, f"site {name}: {answer.error or f'HTTP {answer.http_status}'}")
