"""Monitors: the expected jobs the gateway's alert engine watches, each with its state, its
last run, when the next run is expected and a strip of its recent runs (oldest left).

A gateway view: monitors belong to a site (``/v1/monitors``); in central mode the page says so.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

from ..client import ApiError, parse_time
from ..ui import DASH, fmt_duration, fmt_time, note, now, table
from .alerts import problem

#: Monitor states, worst first: the table lists the monitors needing attention at the top.
STATE_ORDER = ("failing", "overdue", "late", "unknown", "running", "waiting", "ok")


def schedule_text(schedule: dict[str, Any] | None) -> str:
    if not schedule:
        return DASH
    if schedule.get("cron"):
        return f"cron {schedule['cron']} ({schedule.get('timezone') or 'UTC'})"
    return f"every {schedule.get('every')}"


def state_badge(state: str | None) -> html.Span:
    state = state or "unknown"
    return html.Span(state, className=f"badge badge-mon-{state}")


def run_strip(runs: list[dict[str, Any]]) -> html.Div:
    """One small square per recent run, coloured by its status, oldest first."""
    ordered = sorted(runs, key=lambda r: r.get("started_at") or "")
    return html.Div(
        [
            html.Span(
                className=f"run run-{r.get('status') or 'unknown'}",
                title=f"{r.get('job_id')}: {r.get('status')} at {fmt_time(r.get('started_at'))}"
                f" ({fmt_duration(r.get('duration_s'))})",
            )
            for r in ordered
        ]
        or DASH,
        className="run-strip",
    )


def last_run(run: dict[str, Any] | None) -> Any:
    if not run:
        return DASH
    return html.Span(
        [
            html.Span(run.get("status") or "", className=f"badge badge-{run.get('status')}"),
            f" {fmt_time(run.get('started_at'))} · {fmt_duration(run.get('duration_s'))}",
        ]
    )


def next_expected(value: str | None) -> str:
    when = parse_time(value) if value else None
    if when is None:
        return DASH
    seconds = (when - now()).total_seconds()
    relative = f"in {fmt_duration(seconds)}" if seconds >= 0 else f"{fmt_duration(-seconds)} ago"
    return f"{fmt_time(when)} ({relative})"


def render(monitors: list[dict[str, Any]]) -> Any:
    if not monitors:
        return note(
            "No monitors: declare them under gateway.alerting.monitors, through "
            "PUT /v1/monitors/{name}, or from an SDK."
        )
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    ordered = sorted(monitors, key=lambda m: (rank.get(m.get("state"), 3), m["name"]))
    rows = [
        [
            html.Span(m["name"], className="monitor-name"),
            m.get("site_id") or "",
            m.get("app") or "",
            m.get("business_key") or "",
            schedule_text(m.get("schedule")),
            state_badge(m.get("state")),
            last_run(m.get("last_run")),
            next_expected(m.get("next_expected_at")),
            run_strip(m.get("recent_runs") or []),
            m.get("source") or "",
        ]
        for m in ordered
    ]
    headers = [
        "Monitor",
        "Site",
        "App",
        "Key",
        "Schedule",
        "State",
        "Last run",
        "Next expected",
        "Recent runs",
        "Declared in",
    ]
    return table(headers, rows, id="monitors-rows")


def layout(ctx: Any, query: dict[str, str]) -> html.Div:
    if ctx.api.central:
        return html.Div(
            [
                html.H2("Monitors"),
                note(
                    "Monitors belong to a site's gateway: open the dashboard of that gateway "
                    "(--gateway URL) to see them. The Alerts view shows every site's alerts."
                ),
            ]
        )
    return html.Div(
        [
            html.H2("Monitors"),
            html.Span(id="monitors-updated", className="muted"),
            html.Div(id="monitors-error"),
            html.Div(id="monitors-table"),
            dcc.Interval(id="monitors-interval", interval=int(ctx.refresh_s * 1000)),
        ]
    )


def register(app: Any, ctx: Any) -> None:
    @app.callback(
        Output("monitors-table", "children"),
        Output("monitors-error", "children"),
        Output("monitors-updated", "children"),
        Input("monitors-interval", "n_intervals"),
    )
    def refresh(_ticks):
        updated = f"updated {fmt_time(now())} UTC"
        try:
            return render(ctx.api.monitors()), None, updated
        except ApiError as exc:
            return None, problem(exc), updated
