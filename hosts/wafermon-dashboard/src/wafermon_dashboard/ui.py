"""Small building blocks shared by the views: formatting, badges, tables, notices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from dash import dcc, html

from .client import parse_time

STATUS_COLORS = {"running": "#2f6fdf", "finished": "#2e9e5b", "failed": "#d64545"}
KIND_COLORS = {
    "started": "#8aa9e6",
    "progress": "#b9b9c8",
    "finished": "#2e9e5b",
    "failed": "#d64545",
}
#: Time windows offered by the views: label -> seconds.
WINDOWS = {
    "15 min": 900,
    "1 hour": 3600,
    "6 hours": 6 * 3600,
    "24 hours": 86400,
    "3 days": 3 * 86400,
    "7 days": 7 * 86400,
}
MISSING = ("failed", "timed_out")
DASH = "\u2013"  # shown for a missing value


def fmt_time(value: str | datetime | None) -> str:
    when = parse_time(value) if isinstance(value, str) else value
    if when is None:
        return DASH
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_number(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def badge(status: str | None) -> html.Span:
    status = status or "unknown"
    return html.Span(status, className=f"badge badge-{status}")


def job_href(entity_id: str, site: str | None = None) -> str:
    href = "/job/" + quote(entity_id, safe="")
    return href + ("?" + urlencode({"site": site}) if site else "")


def job_link(item: dict[str, Any]) -> dcc.Link:
    return dcc.Link(
        item["entity_id"], href=job_href(item["entity_id"], item.get("site")), className="job-link"
    )


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, id: str | None = None, cls: str = ""
) -> html.Table:
    kwargs = {"id": id} if id else {}
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in headers])),
            html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows]),
        ],
        className=f"data-table {cls}".strip(),
        **kwargs,
    )


def error_box(message: str) -> html.Div:
    return html.Div(message, className="notice notice-error", role="alert")


def note(message: Any) -> html.Div:
    return html.Div(message, className="notice")


def missing_sites(body: dict[str, Any]) -> html.Div | None:
    """A warning naming the sites a central answer lacks, or None."""
    sites = body.get("sites") or {}
    missing = [
        f"{name} ({info['status'].replace('_', ' ')}: {info.get('error', '')})"
        for name, info in sites.items()
        if info.get("status") in MISSING
    ]
    if not missing:
        return None
    return html.Div(
        "Partial answer, missing " + "; ".join(missing),
        className="notice notice-warn missing-sites",
    )


def card(label: str, value: Any, *, id: str, cls: str = "", href: str | None = None) -> html.Div:
    body = html.Div(value, id=id, className="card-value")
    inner = [html.Div(label, className="card-label"), body]
    content = dcc.Link(inner, href=href, className="card-link") if href else html.Div(inner)
    return html.Div(content, className=f"card {cls}".strip())


def dropdown(id: str, options: dict[str, Any] | Sequence[Any], value: Any, **kw: Any):
    if isinstance(options, dict):
        opts = [{"label": label, "value": v} for label, v in options.items()]
    else:
        opts = [{"label": str(o), "value": o} for o in options]
    return dcc.Dropdown(id=id, options=opts, value=value, clearable=False, **kw)


def labelled(label: str, control: Any, cls: str = "") -> html.Label:
    return html.Label([html.Span(label, className="control-label"), control], className=cls)


def now() -> datetime:
    return datetime.now(UTC)
