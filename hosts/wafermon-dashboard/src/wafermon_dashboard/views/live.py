"""Live monitoring: running / finished / failed counts and throughput, refreshed by itself.

Badges above the counts show the firing alerts per site and app (a link to the Alerts view);
none when alerting is off. Counts cover jobs *active* in the chosen window (updated at or after
its start), read newest first and capped (``Context.count_cap``): a capped count shows as
``1000+``. The page never loads the whole job table.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from dash import Input, Output, dcc, html

from .. import charts
from ..client import ApiError, Count
from ..ui import (
    DASH,
    WINDOWS,
    badge,
    card,
    dropdown,
    error_box,
    fmt_duration,
    fmt_time,
    job_link,
    labelled,
    missing_sites,
    now,
    table,
)
from .alerts import badge_counts

STATUSES = ("running", "finished", "failed")


def layout(ctx: Any, query: dict[str, str]) -> html.Div:
    site_options = {"all sites": ""} | {s: s for s in ctx.sites()}
    return html.Div(
        [
            html.H2("Live"),
            html.Div(
                [
                    labelled("Active in the last", dropdown("live-window", WINDOWS, 3600)),
                    labelled(
                        "Site",
                        dropdown("live-site", site_options, query.get("site", "")),
                        cls="" if ctx.api.central else "hidden",
                    ),
                    html.Span(id="live-updated", className="muted"),
                ],
                className="controls",
            ),
            html.Div(id="live-error"),
            html.Div(id="live-alerts", className="alert-badges"),
            html.Div(
                [
                    card(
                        "Running",
                        "\u2026",
                        id="live-running",
                        cls="running",
                        href="/jobs?status=running",
                    ),
                    card(
                        "Finished",
                        "\u2026",
                        id="live-finished",
                        cls="finished",
                        href="/jobs?status=finished",
                    ),
                    card(
                        "Failed",
                        "\u2026",
                        id="live-failed",
                        cls="failed",
                        href="/jobs?status=failed",
                    ),
                    card("Throughput", "\u2026", id="live-rate"),
                ],
                className="cards",
            ),
            dcc.Graph(id="live-graph", figure=charts.empty("Finished and failed jobs over time")),
            html.H3("Latest activity"),
            html.Div(id="live-recent"),
            dcc.Interval(id="live-interval", interval=int(ctx.refresh_s * 1000)),
        ]
    )


def register(app: Any, ctx: Any) -> None:
    @app.callback(
        Output("live-running", "children"),
        Output("live-finished", "children"),
        Output("live-failed", "children"),
        Output("live-rate", "children"),
        Output("live-graph", "figure"),
        Output("live-recent", "children"),
        Output("live-updated", "children"),
        Output("live-error", "children"),
        Input("live-interval", "n_intervals"),
        Input("live-window", "value"),
        Input("live-site", "value"),
    )
    def refresh(ticks: int | None, window: int, site: str) -> tuple:
        since = now() - timedelta(seconds=window)
        filters = {"site": site} if site and ctx.api.central else {}
        updated = f"updated {fmt_time(now())} UTC · refresh {ticks or 0}"
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                futures = {
                    s: pool.submit(
                        ctx.api.recent, status=s, since=since, cap=ctx.count_cap, **filters
                    )
                    for s in STATUSES
                }
                latest_future = pool.submit(ctx.api.jobs, sort="-updated_at", limit=10, **filters)
                found = {s: f.result() for s, f in futures.items()}
                latest = latest_future.result()
        except ApiError as exc:
            blank = DASH
            figure = charts.empty("Finished and failed jobs over time", "no answer")
            return blank, blank, blank, blank, figure, None, updated, error_box(str(exc))
        counts = {s: Count(len(items), capped) for s, (items, capped) in found.items()}
        done = counts["finished"].value + counts["failed"].value
        rate = f"{done / (window / 60):.2f} jobs/min"
        figure = charts.throughput(found["finished"][0] + found["failed"][0], since)
        rows = [
            [
                job_link(i),
                *([i.get("site", "")] if ctx.api.central else []),
                i.get("business_key") or "",
                i["app"],
                badge(i["status"]),
                fmt_time(i["updated_at"]),
                fmt_duration(i.get("duration_s")),
            ]
            for i in latest["items"]
        ]
        headers = ["Job", *(["Site"] if ctx.api.central else []), "Lot", "App", "Status",
                   "Last update", "Duration"]  # fmt: skip
        recent = table(headers, rows, id="live-recent-table")
        return (
            str(counts["running"]),
            str(counts["finished"]),
            str(counts["failed"]),
            rate,
            figure,
            recent,
            updated,
            missing_sites(latest),
        )

    @app.callback(
        Output("live-alerts", "children"),
        Input("live-interval", "n_intervals"),
        Input("live-site", "value"),
    )
    def alert_badges(_ticks: int | None, site: str) -> Any:
        params = {"site": site} if site and ctx.api.central else {}
        try:
            firing = ctx.api.alerts(status="firing", limit=1000, **params)["alerts"]
        except ApiError as exc:
            if "HTTP 409" in str(exc):  # alerting is off on this gateway: nothing to show
                return None
            return html.Span(f"alerts: {exc}", className="muted")
        counts = badge_counts(firing)
        if not counts:
            return html.Span("No alert firing", className="muted", id="live-alerts-none")
        return [html.Span("Firing alerts", className="control-label")] + [
            dcc.Link(
                f"{site_id or '?'} · {app_name or 'site'}: {n}",
                href="/alerts?" + urlencode({"site": site_id, "app": app_name}),
                className="alert-badge",
            )
            for (site_id, app_name), n in sorted(counts.items())
        ]
