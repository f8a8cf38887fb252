"""Metric trends of the trend sources (a cloudwatch source: GetMetricData).

The gateway says which sources keep metrics (``/v1/trends/sources``; central lists every
site's, named ``site/source``); the view charts one metric of one of them over a window, as
the site's total or one line per application, read from ``/v1/trends`` (the gateway bounds the
points; central passes the request to the site's gateway).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dash import Input, Output, State, dcc, html

from .. import charts
from ..client import ApiError, iso
from ..ui import WINDOWS, dropdown, error_box, labelled, note, now

STATS = {"sum": "sum", "average": "avg", "minimum": "min", "maximum": "max", "count": "count"}
LINES = {"site total": "", "per application": "app"}
PREFERRED = "JobsFailed"


def layout(ctx: Any, query: dict[str, str]) -> html.Div:
    try:
        offered = ctx.api.trend_sources()
    except ApiError as exc:
        return html.Div([html.H2("Trends"), error_box(str(exc))])
    if not offered:
        where = "site's gateway" if ctx.api.central else "source of this gateway"
        return html.Div([html.H2("Trends"), note(
            f"No {where} keeps metric trends; a cloudwatch source does "
            "(docs/backends/cloudwatch.md)."
        )])  # fmt: skip
    source = query.get("source") if query.get("source") in offered else next(iter(offered))
    metrics = offered[source]["metrics"]
    metric = query.get("metric") if query.get("metric") in metrics else None
    metric = metric or (PREFERRED if PREFERRED in metrics else next(iter(metrics)))
    return html.Div(
        [
            html.H2("Trends"),
            html.Div(
                [
                    labelled("Source", dropdown("trend-source", list(offered), source)),
                    labelled("Metric", dropdown("trend-metric", list(metrics), metric)),
                    labelled("Statistic", dropdown("trend-stat", STATS, "sum")),
                    labelled("Window", dropdown("trend-range", WINDOWS, 86400)),
                    labelled("Lines", dropdown("trend-by", LINES, query.get("by", ""))),
                    labelled(
                        "App",
                        dcc.Input(
                            id="trend-app", debounce=True, type="text", placeholder="application"
                        ),
                    ),
                ],
                className="controls",
            ),
            html.Div(id="trend-error"),
            html.Div(id="trend-summary", className="muted"),
            dcc.Graph(id="trend-graph", figure=charts.empty("Trend")),
        ]
    )


def summary(body: dict[str, Any]) -> str:
    """What the chart shows, in words: series, points and (for sums) the total."""
    points = [p["value"] for s in body["series"] for p in s["points"]]
    lines = [s["name"] for s in body["series"] if s["points"]]
    text = (
        f"{body['metric']} from {body['source']}, {body['stat']} per "
        f"{charts.period_label(body['period'])}: {len(points)} points"
    )
    if lines:
        text += f" in {len(lines)} series ({', '.join(lines)})"
    if body["stat"] in ("sum", "count") and points:
        text += f", {sum(points):g} in all"
    return text


def register(app: Any, ctx: Any) -> None:
    @app.callback(
        Output("trend-metric", "options"),
        Output("trend-metric", "value"),
        Input("trend-source", "value"),
        State("trend-metric", "value"),
    )
    def metrics_of(source, metric):
        try:
            metrics = list(ctx.api.trend_sources().get(source, {}).get("metrics", {}))
        except ApiError:
            metrics = [metric] if metric else []
        if metric not in metrics:
            metric = PREFERRED if PREFERRED in metrics else (metrics or [None])[0]
        return [{"label": m, "value": m} for m in metrics], metric

    @app.callback(
        Output("trend-summary", "children"),
        Output("trend-graph", "figure"),
        Output("trend-error", "children"),
        Input("trend-source", "value"),
        Input("trend-metric", "value"),
        Input("trend-stat", "value"),
        Input("trend-range", "value"),
        Input("trend-by", "value"),
        Input("trend-app", "value"),
    )
    def update(source, metric, stat, window, by, app_name):
        blank = charts.empty("Trend")
        if not source or not metric:
            return "", blank, None
        try:
            body = ctx.api.trends(
                source=source,
                metric=metric,
                stat=stat,
                since=iso(now() - timedelta(seconds=window)),
                by=by or None,
                app=None if by else (app_name or "").strip() or None,
            )
        except ApiError as exc:
            return "", blank, error_box(str(exc))
        return summary(body), charts.trend(body), None
