"""GET /v1/trends (one metric of one source over time) and GET /v1/trends/sources.

A source offers trends when its query adapter is a core ``TrendSource`` (the cloudwatch source
reads GetMetricData); the gateway knows no backend by name. Every answer is bounded by
``TrendQuery`` (whole-minute periods, at most 1440 points per series, 20 series), and a fault
is a 400 naming the parameter. The source's answer is checked here too: points outside the
asked range are dropped, so a source that ignores the range cannot widen the chart.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from wafermon import TrendQuery, TrendSource, describe
from wafermon.errors import FieldValueError
from wafermon.interfaces import MAX_TREND_PERIOD, MAX_TREND_POINTS, MAX_TREND_SERIES, TREND_STATS

from ..common.bodies import BodyResponse
from ..common.errors import ApiError, bad_parameter
from ..common.openapi import error, json_content, operation, query_param, ref
from .bodies import Point, Series, Trend, TrendSourceInfo, TrendSources
from .openapi import COMMON_ERRORS, TIME
from .params import Params
from .runtime import SourceUnavailable

#: TrendQuery field -> query parameter of GET /v1/trends.
PARAM_OF = {"start": "since", "end": "until", "site_id": "site", "by_app": "by"}
DEFAULT_WINDOW = timedelta(hours=24)
#: Default periods, shortest first: the first that gives at most DEFAULT_POINTS points.
PERIODS = (60, 300, 900, 3600, 6 * 3600, MAX_TREND_PERIOD)
DEFAULT_POINTS = 360


def trend_sources(gw: Any) -> dict[str, TrendSource]:
    """The gateway's sources whose adapter answers trends, by name."""
    return {n: h.adapter for n, h in gw.sources.items() if isinstance(h.adapter, TrendSource)}


def default_period(start: datetime, end: datetime) -> int:
    seconds = (end - start).total_seconds()
    return next((p for p in PERIODS if seconds / p <= DEFAULT_POINTS), PERIODS[-1])


SOURCE_ERRORS = {
    "502": error("The source failed; error says why."),
    "504": error("The source did not answer within gateway.source_timeout."),
}


@operation(
    "trendSources",
    "The sources that answer /v1/trends, with their metrics and statistics.",
    {"200": json_content(ref("TrendSources"), "Trend sources by name."), **COMMON_ERRORS},
)
async def sources(request: Request) -> Response:
    """Which sources answer trends, with their metrics (name -> unit) and statistics."""
    Params(request, set())
    found = {
        name: TrendSourceInfo(metrics=dict(adapter.trend_metrics()), stats=list(TREND_STATS))
        for name, adapter in trend_sources(request.app.state.gateway).items()
    }
    return BodyResponse(TrendSources(sources=found))


def _trend_query(params: Params, gw: Any, source: TrendSource) -> TrendQuery:
    metric = params.text("metric")
    if metric is None:
        raise bad_parameter("metric", "required: one of the source's trend metrics")
    if metric not in source.trend_metrics():
        known = ", ".join(sorted(source.trend_metrics()))
        raise bad_parameter("metric", f"unknown metric {metric!r} (this source has: {known})")
    end = params.time("until") or datetime.now(UTC)
    start = params.time("since") or end - DEFAULT_WINDOW
    by = params.choice("by", ("app",))
    period = params.text("period")
    try:
        return TrendQuery(
            metric=metric,
            site_id=params.text("site") or gw.site_id,
            start=start,
            end=end,
            period=(
                default_period(start, end)
                if period is None
                else params.integer("period", 0, 60, MAX_TREND_PERIOD)
            ),
            stat=params.choice("stat", TREND_STATS, "sum"),
            app=params.text("app"),
            by_app=by == "app",
        )
    except FieldValueError as exc:
        raise bad_parameter(PARAM_OF.get(exc.field, exc.field), exc.message) from None


@operation(
    "trends",
    "One metric of a trend source (e.g. cloudwatch) per period over time.",
    {
        "200": json_content(ref("Trend"), "The series, oldest point first."),
        **COMMON_ERRORS,
        **SOURCE_ERRORS,
    },
    parameters=[
        {**query_param("source", "A source listed by /v1/trends/sources."), "required": True},
        {**query_param("metric", "One of the source's metrics (JobsFailed...)."),
         "required": True},
        query_param("stat", "Per period (default sum).",
                    {"type": "string", "enum": list(TREND_STATS)}),
        query_param("site", "The site (default: this gateway's)."),
        query_param("app", "One application's series (default: the site's total)."),
        query_param("by", "app: one series per application (at most 20).",
                    {"type": "string", "enum": ["app"]}),
        query_param("since", "From this ISO 8601 time (default: until - 24 h).", TIME),
        query_param("until", "Before this ISO 8601 time (default: now).", TIME),
        query_param("period", "Seconds per point, a multiple of 60 (default: from the range, "
                    f"at most {DEFAULT_POINTS} points); at most {MAX_TREND_POINTS} points.",
                    {"type": "integer", "minimum": 60, "maximum": MAX_TREND_PERIOD,
                     "multipleOf": 60}),
    ],
)  # fmt: skip
async def trends(request: Request) -> Response:
    gw = request.app.state.gateway
    allowed = {"source", "metric", "stat", "site", "app", "by", "since", "until", "period"}
    params = Params(request, allowed)
    offered = trend_sources(gw)
    name = params.text("source")
    if name is None or name not in offered:
        have = ", ".join(offered) or "none: no configured source keeps metrics"
        what = "required" if name is None else f"{name!r} is not a source that answers trends"
        raise bad_parameter("source", f"{what} (trend sources: {have})")
    query = _trend_query(params, gw, offered[name])
    timeout = gw.settings.source_timeout
    try:
        adapter = await gw.sources[name].ready()
        async with asyncio.timeout(timeout):
            series = await adapter.trends(query)
    except SourceUnavailable as exc:
        raise ApiError(502, f"source {name!r} failed: {exc}") from None
    except TimeoutError:
        raise ApiError(504, f"source {name!r} timed out: no answer within {timeout:g}s") from None
    except FieldValueError as exc:
        raise bad_parameter(PARAM_OF.get(exc.field, exc.field), exc.message) from None
    except Exception as exc:  # noqa: BLE001 - the source's failure is the answer, not a crash
        raise ApiError(502, f"source {name!r} failed: {describe(exc)}") from None
    return BodyResponse(
        Trend(
            source=name,
            metric=query.metric,
            unit=offered[name].trend_metrics()[query.metric],
            stat=query.stat,
            period=query.period,
            site=query.site_id,
            since=query.start,
            until=query.end,
            series=[
                Series(
                    name=s.name,
                    app=s.app,
                    points=[
                        Point(time=t, value=v)
                        for t, v in sorted(s.points)
                        if query.start <= t < query.end
                    ][:MAX_TREND_POINTS],
                )
                for s in series[:MAX_TREND_SERIES]
            ],
        )
    )
