"""Historical analysis over the unified view: managed store and external sources together.

The source picker chooses which sources ``/v1/data/unified`` reads (``sources=``); on central
the same names are passed to every site. One page of at most the chosen number of events is
read (the oldest in the window first), and each source's status says what it contributed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dash import Input, Output, dcc, html

from .. import charts
from ..client import ApiError, iso
from ..ui import WINDOWS, dropdown, error_box, labelled, missing_sites, note, now, table

LIMITS = [200, 1000, 2000, 5000]
ENTITY_OPTIONS = {"jobs and subjobs": "", "jobs": "job", "subjobs": "subjob"}
STATUS_OPTIONS = {"any": "", "running (started, progress)": "running", "finished": "finished",
                  "failed": "failed"}  # fmt: skip


def layout(ctx: Any, query: dict[str, str]) -> html.Div:
    try:
        sources = ctx.api.sources()
        problem = None
    except ApiError as exc:
        sources, problem = ["managed"], error_box(str(exc))
    return html.Div(
        [
            html.H2("History"),
            problem,
            html.Div(
                [
                    labelled(
                        "Sources",
                        dcc.Checklist(
                            id="hist-sources",
                            options=[{"label": s, "value": s} for s in sources],
                            value=sources,
                            inline=True,
                        ),
                    ),
                    labelled("Window", dropdown("hist-range", WINDOWS, 86400)),
                    labelled("Entities", dropdown("hist-entity", ENTITY_OPTIONS, "")),
                    labelled("Status", dropdown("hist-status", STATUS_OPTIONS, "")),
                    labelled(
                        "App",
                        dcc.Input(
                            id="hist-app", debounce=True, type="text", placeholder="application"
                        ),
                    ),
                    labelled("At most", dropdown("hist-limit", LIMITS, 1000)),
                ],
                className="controls",
            ),
            html.Div(id="hist-error"),
            html.Div(id="hist-summary", className="muted"),
            html.Div(id="hist-sources-status"),
            dcc.Graph(id="hist-timeline", figure=charts.empty("Events over time, by kind")),
            html.Div(
                [
                    dcc.Graph(id="hist-durations", figure=charts.empty("Durations")),
                    dcc.Graph(id="hist-apps", figure=charts.empty("Outcomes by application")),
                ],
                className="grid2",
            ),
        ]
    )


def _source_rows(body: dict[str, Any], central: bool) -> list[list[Any]]:
    rows = []
    if central:
        for site, info in body.get("sites", {}).items():
            if info.get("status") != "ok":
                rows.append([site, "(site)", info.get("status"), "", info.get("error", "")])
                continue
            for name, s in info.get("sources", {}).items():
                rows.append([site, name, s["status"], s.get("count", ""), s.get("error", "")])
    else:
        for name, s in body.get("sources", {}).items():
            rows.append([name, s["status"], s.get("count", ""), s.get("error", "")])
    return rows


def register(app: Any, ctx: Any) -> None:
    @app.callback(
        Output("hist-summary", "children"),
        Output("hist-sources-status", "children"),
        Output("hist-timeline", "figure"),
        Output("hist-durations", "figure"),
        Output("hist-apps", "figure"),
        Output("hist-error", "children"),
        Input("hist-sources", "value"),
        Input("hist-range", "value"),
        Input("hist-entity", "value"),
        Input("hist-status", "value"),
        Input("hist-app", "value"),
        Input("hist-limit", "value"),
    )
    def update(sources, window, entity, status, app_name, limit):
        blank = charts.empty("Events over time, by kind")
        if not sources:
            return "", note("Pick at least one source."), blank, blank, blank, None
        try:
            body = ctx.api.unified(
                since=iso(now() - timedelta(seconds=window)),
                sources=",".join(sources),
                entity_type=entity or None,
                status=status or None,
                app=(app_name or "").strip() or None,
                limit=limit,
            )
        except ApiError as exc:
            return "", None, blank, blank, blank, error_box(str(exc))
        events = body["events"]
        more = " (more in this window: narrow it or add filters)" if body["next_cursor"] else ""
        summary = f"{len(events)} events from {', '.join(sources)}{more}"
        headers = (["Site"] if ctx.api.central else []) + ["Source", "Status", "Events", "Error"]
        statuses = table(headers, _source_rows(body, ctx.api.central), id="hist-source-table")
        return (
            summary,
            statuses,
            charts.events_over_time(events),
            charts.durations(events),
            charts.by_app(events),
            missing_sites(body),
        )
