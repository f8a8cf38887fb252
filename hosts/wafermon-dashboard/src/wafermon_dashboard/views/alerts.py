"""Alerts: what is firing now (first), the history of resolved alerts, and silences.

Everything comes from the gateway's alert engine (``/v1/alerts``, ``/v1/silences``) or, in
central mode, central's ``/v1/alerts`` across sites. The page only reads, except the silence
form: an admin (see ``admin``) silences the alerts matching a firing alert's labels, with an
author, a reason and an expiry; the gateway keeps the silence and records it on the alerts.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from dash import ALL, Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx

from .. import admin
from ..client import ApiError, iso, parse_time
from ..ui import (
    DASH,
    dropdown,
    error_box,
    fmt_duration,
    fmt_time,
    labelled,
    missing_sites,
    note,
    now,
    table,
)

STATUS_OPTIONS = {"firing and history": "all", "firing only": "firing", "resolved only": "resolved"}
SEVERITY_OPTIONS = {
    "any severity": "",
    "critical": "critical",
    "warning": "warning",
    "info": "info",
}
SILENCE_FOR = {"1 hour": 3600, "4 hours": 4 * 3600, "1 day": 86400, "1 week": 7 * 86400}
HISTORY_LIMIT = 50
#: The labels offered as silence matchers, in this order; the rule always comes first.
MATCHER_ORDER = ("rule", "site_id", "app", "monitor", "business_key", "job_id", "severity")


def key_of(alert: dict[str, Any]) -> str:
    labels = alert.get("labels") or {}
    return labels.get("business_key") or labels.get("job_id") or labels.get("monitor") or ""


#: The columns both tables start with, and their cells (``lead_cells``).
LEAD = ["Severity", "Summary", "Site", "App", "Key", "Rule"]


def lead_cells(alert: dict[str, Any]) -> list[Any]:
    labels = alert.get("labels") or {}
    return [
        severity_badge(alert.get("severity")),
        html.Span(alert.get("summary") or "", title=alert.get("description") or ""),
        alert.get("site_id") or labels.get("site_id") or "",
        labels.get("app") or "",
        key_of(alert),
        alert.get("rule") or "",
    ]


def severity_badge(severity: str | None) -> html.Span:
    severity = severity or "info"
    return html.Span(severity, className=f"badge badge-sev-{severity}")


def state_badges(alert: dict[str, Any]) -> list[Any]:
    out = [
        html.Span(alert.get("status") or "firing", className=f"badge badge-{alert.get('status')}")
    ]
    if alert.get("silenced_by"):
        out.append(
            html.Span("silenced", className="badge badge-silenced", title=alert["silenced_by"])
        )
    if alert.get("inhibited"):
        out.append(html.Span("inhibited", className="badge badge-silenced"))
    return out


def notifications_text(alert: dict[str, Any]) -> Any:
    """``3 sent`` or ``1 sent · 2 failed: <last error>``: what the people were told."""
    attempts = alert.get("notifications") or []
    if not attempts:
        return DASH
    ok = sum(1 for a in attempts if a.get("ok"))
    failed = [a for a in attempts if not a.get("ok")]
    text = f"{ok} sent"
    if failed:
        last = failed[-1]
        text += f" · {len(failed)} failed ({last.get('notifier')}: {last.get('error') or ''})"
    return html.Span(text, className="notice-warn-text" if failed and not ok else "")


def matchers_of(alert: dict[str, Any]) -> dict[str, str]:
    """The labels a silence of this alert matches on (rule and labels; severity left out)."""
    labels = {"rule": alert["rule"], **(alert.get("labels") or {})}
    ordered = [k for k in MATCHER_ORDER if k in labels and k != "severity"]
    ordered += sorted(k for k in labels if k not in MATCHER_ORDER)
    return {k: str(labels[k]) for k in ordered if labels[k] not in (None, "")}


def problem(exc: ApiError) -> html.Div:
    """The error as the page shows it; alerting switched off is a note, not a failure."""
    if "HTTP 409" in str(exc):
        return note(f"Alerting is off here ({exc}); docs/alerting.md turns it on.")
    return error_box(str(exc))


def badge_counts(alerts: list[dict[str, Any]]) -> Counter:
    """Firing alerts per (site, app), for the live view's badges (central names the site)."""
    return Counter(
        (
            a.get("site") or a.get("site_id") or (a.get("labels") or {}).get("site_id") or "",
            (a.get("labels") or {}).get("app") or "",
        )
        for a in alerts
        if a.get("status") == "firing"
    )


def layout(ctx: Any, query: dict[str, str]) -> html.Div:
    site_options = {"all sites": ""} | {s: s for s in ctx.sites()}
    return html.Div(
        [
            html.H2("Alerts"),
            html.Div(
                [
                    labelled("Show", dropdown("alerts-status", STATUS_OPTIONS, "all")),
                    labelled(
                        "Severity",
                        dropdown("alerts-severity", SEVERITY_OPTIONS, query.get("severity", "")),
                    ),
                    labelled(
                        "App",
                        dcc.Input(
                            id="alerts-app",
                            value=query.get("app", ""),
                            debounce=True,
                            placeholder="application",
                            type="text",
                        ),
                    ),
                    labelled(
                        "Site",
                        dropdown("alerts-site", site_options, query.get("site", "")),
                        cls="" if ctx.api.central else "hidden",
                    ),
                    html.Span(id="alerts-updated", className="muted"),
                ],
                className="controls",
            ),
            html.Div(id="alerts-error"),
            html.H3(["Firing ", html.Span(id="alerts-firing-count", className="muted")]),
            html.Div(id="alerts-firing"),
            silence_panel(),
            html.Div(id="silence-result"),
            html.H3("History"),
            html.Div(id="alerts-history"),
            html.H3("Silences", className="hidden" if ctx.api.central else ""),
            html.Div(id="alerts-silences"),
            dcc.Store(id="alerts-firing-data"),
            dcc.Store(id="silence-target"),
            dcc.Interval(id="alerts-interval", interval=int(ctx.refresh_s * 1000)),
        ]
    )


def silence_panel() -> html.Div:
    return html.Div(
        [
            html.H4(id="silence-title"),
            labelled(
                "Match alerts with",
                dcc.Checklist(
                    id="silence-matchers",
                    options=[],
                    value=[],
                    className="checklist",
                    labelStyle={"display": "inline-flex", "gap": "4px", "marginRight": "16px"},
                ),
            ),
            html.Div(
                [
                    labelled(
                        "Author",
                        dcc.Input(id="silence-author", type="text", placeholder="your name"),
                    ),
                    labelled(
                        "Reason",
                        dcc.Input(
                            id="silence-reason",
                            type="text",
                            placeholder="why",
                            style={"minWidth": "320px"},
                        ),
                    ),
                    labelled("For", dropdown("silence-for", SILENCE_FOR, 3600)),
                    html.Button("Silence", id="silence-submit", n_clicks=0, className="primary"),
                    html.Button("Cancel", id="silence-cancel", n_clicks=0, className="small"),
                ],
                className="controls",
            ),
        ],
        id="silence-panel",
        className="panel hidden",
    )


def fetch(ctx: Any, status: str, severity: str, app_name: str, site: str) -> dict[str, Any]:
    params: dict[str, Any] = {"severity": severity or None, "app": (app_name or "").strip() or None}
    if ctx.api.central and site:
        params["site"] = site  # central's configured site name
    out: dict[str, Any] = {"firing": [], "history": [], "notice": None}
    if status in ("all", "firing"):
        body = ctx.api.alerts(status="firing", limit=1000, **params)
        out["firing"], out["notice"] = body["alerts"], missing_sites(body)
    if status in ("all", "resolved"):
        body = ctx.api.alerts(status="resolved", limit=HISTORY_LIMIT, **params)
        out["history"] = body["alerts"]
        out["notice"] = out["notice"] or missing_sites(body)
    return out


def firing_table(ctx: Any, alerts: list[dict[str, Any]], can_silence: bool) -> Any:
    if not alerts:
        return note("Nothing is firing.")
    rows = []
    for a in alerts:
        action = (
            html.Button(
                "Silence\u2026",
                id={"type": "silence-open", "index": a["fingerprint"]},
                n_clicks=0,
                className="small",
            )
            if can_silence and not a.get("silenced_by")
            else ""
        )
        rows.append(
            [
                *lead_cells(a),
                fmt_time(a.get("starts_at")),
                state_badges(a),
                notifications_text(a),
                action,
            ]
        )
    headers = [*LEAD, "Since", "State", "Notifications", ""]
    return table(headers, rows, id="alerts-firing-table")


def history_table(alerts: list[dict[str, Any]]) -> Any:
    if not alerts:
        return note("No resolved alerts.")
    rows = []
    for a in alerts:
        start, end = a.get("starts_at"), a.get("ends_at")
        lasted = None
        if start and end:
            lasted = (parse_time(end) - parse_time(start)).total_seconds()
        rows.append(
            [
                *lead_cells(a),
                fmt_time(start),
                fmt_time(end),
                fmt_duration(lasted),
                notifications_text(a),
            ]
        )
    headers = [*LEAD, "Started", "Resolved", "Lasted", "Notifications"]
    return table(headers, rows, id="alerts-history-table")


def silences_table(silences: list[dict[str, Any]]) -> Any:
    active = [s for s in silences if s.get("active")]
    if not active:
        return note("No active silence.")
    rows = [
        [
            ", ".join(f"{k}={v}" for k, v in s["matchers"].items()),
            s.get("author", ""),
            s.get("reason", ""),
            fmt_time(s.get("starts_at")),
            fmt_time(s.get("ends_at")),
        ]
        for s in active
    ]
    return table(["Matches", "Author", "Reason", "From", "Until"], rows, id="alerts-silences-table")


def register(app: Any, ctx: Any) -> None:
    @app.callback(
        Output("alerts-firing", "children"),
        Output("alerts-firing-count", "children"),
        Output("alerts-history", "children"),
        Output("alerts-silences", "children"),
        Output("alerts-firing-data", "data"),
        Output("alerts-error", "children"),
        Output("alerts-updated", "children"),
        Input("alerts-interval", "n_intervals"),
        Input("alerts-status", "value"),
        Input("alerts-severity", "value"),
        Input("alerts-app", "value"),
        Input("alerts-site", "value"),
    )
    def refresh(ticks, status, severity, app_name, site):
        updated = f"updated {fmt_time(now())} UTC"
        try:
            found = fetch(ctx, status, severity, app_name, site)
            silences = [] if ctx.api.central else ctx.api.silences()
        except ApiError as exc:
            return None, "", None, None, [], problem(exc), updated
        can_silence = not ctx.api.central and admin.can_silence(ctx)
        firing = found["firing"]
        return (
            firing_table(ctx, firing, can_silence) if status != "resolved" else note("Hidden."),
            f"({len(firing)})" if status != "resolved" else "",
            history_table(found["history"]) if status != "firing" else note("Hidden."),
            None if ctx.api.central else silences_table(silences),
            {a["fingerprint"]: matchers_of(a) for a in firing},
            found["notice"],
            updated,
        )

    @app.callback(
        Output("silence-panel", "className"),
        Output("silence-title", "children"),
        Output("silence-matchers", "options"),
        Output("silence-matchers", "value"),
        Output("silence-target", "data"),
        Input({"type": "silence-open", "index": ALL}, "n_clicks"),
        Input("silence-cancel", "n_clicks"),
        State("alerts-firing-data", "data"),
        prevent_initial_call=True,
    )
    def open_form(clicks, _cancel, firing):
        trigger = dash_ctx.triggered_id
        if trigger == "silence-cancel":
            return "panel hidden", no_update, no_update, no_update, None
        # The table is rebuilt on every refresh: new buttons fire with n_clicks 0; ignore them.
        if not isinstance(trigger, dict) or not any(clicks or []):
            return no_update, no_update, no_update, no_update, no_update
        if not dash_ctx.triggered or not dash_ctx.triggered[0]["value"]:
            return no_update, no_update, no_update, no_update, no_update
        matchers = (firing or {}).get(trigger["index"])
        if not matchers:
            return no_update, no_update, no_update, no_update, no_update
        options = [{"label": f"{k} = {v}", "value": k} for k, v in matchers.items()]
        title = f"Silence alerts like {matchers.get('rule', '')}"
        return "panel", title, options, list(matchers), matchers

    @app.callback(
        Output("silence-result", "children"),
        Output("silence-panel", "className", allow_duplicate=True),
        Output("alerts-interval", "n_intervals"),
        Input("silence-submit", "n_clicks"),
        State("silence-target", "data"),
        State("silence-matchers", "value"),
        State("silence-author", "value"),
        State("silence-reason", "value"),
        State("silence-for", "value"),
        State("alerts-interval", "n_intervals"),
        prevent_initial_call=True,
    )
    def submit(clicks, target, keys, author, reason, seconds, ticks):
        if not clicks or not target:
            return no_update, no_update, no_update
        missing = [n for n, v in (("author", author), ("reason", reason)) if not (v or "").strip()]
        if missing or not keys:
            what = ", ".join(missing) or "at least one label to match"
            return error_box(f"A silence needs {what}."), no_update, no_update
        allowed, token = admin.silence_token(ctx)
        if not allowed:
            return error_box("Only an admin can silence alerts."), "panel hidden", no_update
        body = {
            "matchers": {k: target[k] for k in keys if k in target},
            "author": author.strip(),
            "reason": reason.strip(),
            "ends_at": iso(now() + timedelta(seconds=seconds)),
        }
        try:
            silence = ctx.api.create_silence(body, token)
        except ApiError as exc:
            return error_box(f"Not silenced: {exc}"), no_update, no_update
        done = html.Div(
            f"Silenced until {fmt_time(silence.get('ends_at'))} UTC by {body['author']}: "
            f"{body['reason']}",
            id="silence-done",
            className="notice",
        )
        return done, "panel hidden", (ticks or 0) + 1
