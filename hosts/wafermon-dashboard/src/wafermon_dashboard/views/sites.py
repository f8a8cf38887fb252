"""Multi-site comparison (central mode): reachability and latency of each site, and each
site's running / finished / failed jobs in a window, side by side."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from dash import Input, Output, dcc, html

from .. import charts
from ..client import ApiError, Count
from ..ui import DASH, WINDOWS, badge, dropdown, error_box, fmt_duration, labelled, note, now, table

STATUSES = ("running", "finished", "failed")


def layout(ctx: Any, query: dict[str, str]) -> html.Div:
    if not ctx.api.central:
        return html.Div(
            [
                html.H2("Sites"),
                note("This dashboard reads one gateway. Start it with --central URL to compare "
                     "sites."),
            ]
        )  # fmt: skip
    return html.Div(
        [
            html.H2("Sites"),
            html.Div(
                [labelled("Active in the last", dropdown("sites-window", WINDOWS, 86400))],
                className="controls",
            ),
            html.Div(id="sites-error"),
            html.Div(id="sites-table"),
            html.Div(
                [
                    dcc.Graph(id="sites-counts", figure=charts.empty("Jobs per site and status")),
                    dcc.Graph(id="sites-latency", figure=charts.empty("Site latency")),
                ],
                className="grid2",
            ),
            dcc.Interval(id="sites-interval", interval=int(ctx.refresh_s * 2000)),
        ]
    )


def register(app: Any, ctx: Any) -> None:
    @app.callback(
        Output("sites-table", "children"),
        Output("sites-counts", "figure"),
        Output("sites-latency", "figure"),
        Output("sites-error", "children"),
        Input("sites-window", "value"),
        Input("sites-interval", "n_intervals"),
    )
    def update(window, _ticks):
        since = now() - timedelta(seconds=window)
        try:
            health = ctx.api.health()
            names = list(health["sites"])
            reachable = [n for n in names if health["sites"][n]["reachable"]]
            with ThreadPoolExecutor(max_workers=6) as pool:
                futures = {
                    (n, s): pool.submit(
                        ctx.api.recent, status=s, since=since, cap=ctx.count_cap, site=n
                    )
                    for n in reachable
                    for s in STATUSES
                }
                found = {k: f.result() for k, f in futures.items()}
        except ApiError as exc:
            blank = charts.empty("Jobs per site")
            return None, blank, blank, error_box(str(exc))
        rows, table_rows = [], []
        for n in names:
            info = health["sites"][n]
            counts = {
                s: Count(len(found[n, s][0]), found[n, s][1]) for s in STATUSES if (n, s) in found
            }
            finished = [i for s in ("finished", "failed") for i in found.get((n, s), ([], 0))[0]]
            durations = [i["duration_s"] for i in finished if i.get("duration_s") is not None]
            done = sum(counts[s].value for s in ("finished", "failed")) if counts else 0
            fail_rate = f"{counts['failed'].value / done * 100:.1f} %" if counts and done else DASH
            rows.append(
                {
                    "site": n,
                    "reachable": info["reachable"],
                    "latency_ms": info["latency_ms"],
                    "counts": {s: c.value for s, c in counts.items()},
                }
            )
            table_rows.append(
                [
                    n,
                    badge(info.get("status") or "unreachable"),
                    f"{info['latency_ms']:.0f} ms",
                    *(str(counts[s]) if s in counts else DASH for s in STATUSES),
                    fail_rate,
                    fmt_duration(sum(durations) / len(durations)) if durations else DASH,
                    info.get("error", ""),
                ]
            )
        headers = ["Site", "Health", "Latency", "Running", "Finished", "Failed", "Failure rate",
                   "Mean job duration", "Error"]  # fmt: skip
        return (
            table(headers, table_rows, id="sites-rows"),
            charts.site_counts([r for r in rows if r["reachable"]]),
            charts.site_latency(rows),
            None,
        )
