"""Plotly figures: the subjob Gantt chart, per-subjob resources, throughput, history, sites,
metric trends.

Built from the API's JSON with plotly's graph objects only (no pandas): a Gantt chart is a
horizontal bar chart whose bars start at ``base`` on a date axis.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from .client import parse_time
from .ui import KIND_COLORS, STATUS_COLORS, now

LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
    "height": 300,
    "legend": {"orientation": "h", "y": -0.2},
    "font": {"family": "Liberation Sans, Arial, sans-serif", "size": 12},
}


def empty(title: str, message: str = "no data") -> go.Figure:
    fig = go.Figure(layout={**LAYOUT, "title": title})
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "#888"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _label(item: dict[str, Any]) -> str:
    return item.get("sub_key") or item["entity_id"]


def gantt(subjobs: Sequence[dict[str, Any]], title: str = "Subjob timeline") -> go.Figure:
    """One bar per subjob from its start to its end (or to now while running)."""
    if not subjobs:
        return empty(title, "this job has no subjobs")
    fig = go.Figure()
    current = now()
    for status, color in STATUS_COLORS.items():
        rows = [s for s in subjobs if s["status"] == status]
        if not rows:
            continue
        starts, lengths, labels, texts = [], [], [], []
        for s in rows:
            start = parse_time(s["start_time"])
            end = parse_time(s.get("finished_at")) or (
                current if status == "running" else parse_time(s["updated_at"])
            )
            ms = max((end - start).total_seconds() * 1000, 500.0)
            starts.append(start)
            lengths.append(ms)
            labels.append(_label(s))
            texts.append(f"{s['entity_id']}<br>{status}, {ms / 1000:.1f} s")
        fig.add_trace(
            go.Bar(
                name=status,
                orientation="h",
                base=starts,
                x=lengths,
                y=labels,
                marker_color=color,
                hovertext=texts,
                hoverinfo="text",
            )
        )
    height = min(120 + 22 * len(subjobs), 900)
    fig.update_layout(**{**LAYOUT, "height": height}, title=title, barmode="overlay")
    fig.update_xaxes(type="date")
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def per_subjob(
    subjobs: Sequence[dict[str, Any]], title: str, fields: dict[str, str], unit: str
) -> go.Figure:
    """Bars per subjob for each of ``fields`` (field -> legend name)."""
    if not subjobs:
        return empty(title, "no subjobs")
    labels = [_label(s) for s in subjobs]
    fig = go.Figure()
    for field, name in fields.items():
        values = [s.get(field) for s in subjobs]
        if all(v is None for v in values):
            continue
        fig.add_trace(go.Bar(name=name, x=labels, y=values))
    if not fig.data:
        return empty(title, "no figures reported")
    fig.update_layout(**LAYOUT, title=title, barmode="stack")
    fig.update_yaxes(title_text=unit)
    fig.update_xaxes(type="category")
    return fig


def throughput(items: Sequence[dict[str, Any]], since: datetime, buckets: int = 30) -> go.Figure:
    """Jobs that finished or failed per time bucket since ``since``."""
    title = "Finished and failed jobs over time"
    done = [i for i in items if i["status"] in ("finished", "failed") and i.get("finished_at")]
    if not done:
        return empty(title, "no job finished in this window")
    span = (now() - since) / buckets
    width = max(span, timedelta(seconds=1))
    counts: dict[str, Counter] = defaultdict(Counter)
    for item in done:
        index = int((parse_time(item["finished_at"]) - since) / width)
        counts[item["status"]][min(max(index, 0), buckets - 1)] += 1
    fig = go.Figure()
    xs = [since + width * (n + 0.5) for n in range(buckets)]
    for status in ("finished", "failed"):
        fig.add_trace(
            go.Bar(
                name=status,
                x=xs,
                y=[counts[status][n] for n in range(buckets)],
                marker_color=STATUS_COLORS[status],
            )
        )
    fig.update_layout(**LAYOUT, title=title, barmode="stack", bargap=0.1)
    fig.update_yaxes(title_text="jobs")
    return fig


def events_over_time(events: Sequence[dict[str, Any]], buckets: int = 40) -> go.Figure:
    title = "Events over time, by kind"
    if not events:
        return empty(title)
    times = [parse_time(e["time"]) for e in events]
    first, last = min(times), max(times)
    width = max((last - first) / buckets, timedelta(seconds=1))
    counts: dict[str, Counter] = defaultdict(Counter)
    for event, when in zip(events, times, strict=True):
        counts[event["kind"]][min(int((when - first) / width), buckets - 1)] += 1
    fig = go.Figure()
    xs = [first + width * (n + 0.5) for n in range(buckets)]
    for kind in ("started", "progress", "finished", "failed"):
        if counts[kind]:
            fig.add_trace(
                go.Bar(
                    name=kind,
                    x=xs,
                    y=[counts[kind][n] for n in range(buckets)],
                    marker_color=KIND_COLORS[kind],
                )
            )
    fig.update_layout(**LAYOUT, title=title, barmode="stack", bargap=0.05)
    return fig


def durations(events: Sequence[dict[str, Any]]) -> go.Figure:
    title = "Durations of finished and failed work (s)"
    fig = go.Figure()
    for entity_type in ("job", "subjob"):
        values = [
            e["metrics"]["duration_s"]
            for e in events
            if e["kind"] in ("finished", "failed")
            and e["entity"]["type"] == entity_type
            and (e.get("metrics") or {}).get("duration_s") is not None
        ]
        if values:
            fig.add_trace(go.Histogram(name=f"{entity_type}s", x=values, opacity=0.75))
    if not fig.data:
        return empty(title, "no durations in these events")
    fig.update_layout(**LAYOUT, title=title, barmode="overlay")
    return fig


def by_app(events: Sequence[dict[str, Any]]) -> go.Figure:
    title = "Outcomes by application"
    outcomes = [e for e in events if e["kind"] in ("finished", "failed")]
    if not outcomes:
        return empty(title)
    apps = sorted({e["app"]["name"] for e in outcomes})
    fig = go.Figure()
    for kind in ("finished", "failed"):
        counts = Counter(e["app"]["name"] for e in outcomes if e["kind"] == kind)
        fig.add_trace(
            go.Bar(name=kind, x=apps, y=[counts[a] for a in apps], marker_color=KIND_COLORS[kind])
        )
    fig.update_layout(**LAYOUT, title=title, barmode="stack")
    return fig


def site_counts(rows: Sequence[dict[str, Any]]) -> go.Figure:
    title = "Jobs per site and status"
    if not rows:
        return empty(title)
    names = [r["site"] for r in rows]
    fig = go.Figure()
    for status, color in STATUS_COLORS.items():
        fig.add_trace(
            go.Bar(
                name=status,
                x=names,
                y=[r["counts"].get(status, 0) for r in rows],
                marker_color=color,
            )
        )
    fig.update_layout(**LAYOUT, title=title, barmode="group")
    return fig


def site_latency(rows: Sequence[dict[str, Any]]) -> go.Figure:
    title = "Site latency seen by central (ms)"
    if not rows:
        return empty(title)
    fig = go.Figure(
        go.Bar(
            x=[r["site"] for r in rows],
            y=[r["latency_ms"] for r in rows],
            marker_color=["#2e9e5b" if r["reachable"] else "#d64545" for r in rows],
            text=[f"{r['latency_ms']:.0f}" if r["reachable"] else "unreachable" for r in rows],
            textposition="outside",
        )
    )
    fig.update_layout(**LAYOUT, title=title)
    return fig


def period_label(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def trend(body: dict[str, Any]) -> go.Figure:
    """One line per series of a ``/v1/trends`` answer (the site's total, or one per app)."""
    title = f"{body['metric']} ({body['unit']}), {body['stat']} per {period_label(body['period'])}"
    fig = go.Figure()
    for series in body["series"]:
        if series["points"]:
            fig.add_trace(
                go.Scatter(
                    name=series["name"],
                    x=[parse_time(p["time"]) for p in series["points"]],
                    y=[p["value"] for p in series["points"]],
                    mode="lines+markers",
                )
            )
    if not fig.data:
        return empty(title, "no data points in this window")
    fig.update_layout(**LAYOUT, title=title)
    fig.update_xaxes(type="date", range=[parse_time(body["since"]), parse_time(body["until"])])
    fig.update_yaxes(title_text=body["unit"], rangemode="tozero")
    return fig
