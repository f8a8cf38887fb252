"""System health: the gateway's (or central's) /v1/healthz and /metrics, its sources (or
sites), and with ``--sidecar URL`` the sidecar's backends, breakers and spool lag."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dash import Input, Output, dcc, html
from prometheus_client.parser import text_string_to_metric_families

from ..client import ApiError
from ..ui import badge, error_box, fmt_number, note, table

#: Metric families summarised on the page: family -> the labels to group by.
SUMMARISED = {
    "wafermon_http_requests": ("route", "status"),
    "wafermon_gateway_events": ("outcome",),
    "wafermon_gateway_unified_source_queries": ("source", "status"),
    "wafermon_central_site_requests": ("site", "outcome"),
    "wafermon_central_cache_lookups": ("result",),
    "wafermon_central_partial_answers": ("route",),
}


def layout(ctx: Any, query: dict[str, str]) -> html.Div:
    target = "Central" if ctx.api.central else "Gateway"
    return html.Div(
        [
            html.H2("Health"),
            html.H3(f"{target} {ctx.api.shown_url}"),
            html.Div(id="health-target"),
            html.H3("Sidecar" + (f" {ctx.sidecar.url}" if ctx.sidecar else "")),
            html.Div(id="health-sidecar"),
            html.H3("Metrics"),
            html.Div(id="health-metrics"),
            dcc.Interval(id="health-interval", interval=int(ctx.refresh_s * 1000)),
        ]
    )


def _target(ctx: Any, body: dict[str, Any]) -> list[Any]:
    out: list[Any] = [html.Div(["Status ", badge(body.get("status"))], id="health-status")]
    if ctx.api.central:
        rows = [
            [name, badge(s.get("status") or "unreachable"),
             "yes" if s["reachable"] else "no", f"{s['latency_ms']:.0f} ms", s.get("url", ""),
             s.get("error", "")]
            for name, s in body.get("sites", {}).items()
        ]  # fmt: skip
        out.append(
            table(["Site", "Status", "Reachable", "Latency", "URL", "Error"], rows,
                  id="health-sites")
        )  # fmt: skip
        return out
    store = body.get("store", {})
    rows = [
        [
            "managed store",
            store.get("name", ""),
            store.get("type", ""),
            badge("ok" if store.get("ok") else "failed"),
            store.get("detail", ""),
        ]
    ]
    rows += [
        ["source", name, "", badge("ok" if s["ok"] else "failed"), s.get("detail", "")]
        for name, s in body.get("sources", {}).items()
    ]  # fmt: skip
    out.append(table(["Component", "Name", "Type", "State", "Detail"], rows, id="health-sources"))
    streams = body.get("streams") or {}
    if streams:  # gateway.streams: Kafka/NATS consumers, lag per partition (docs/scale-out.md)
        rows = [
            [name, s.get("type", ""), badge("ok" if s.get("ok") else "failed"),
             fmt_number(s.get("lag_total", 0), digits=0), _lag_text(s.get("lag", {})),
             fmt_number(s.get("dead_lettered", 0), digits=0), s.get("detail", "")]
            for name, s in streams.items()
        ]  # fmt: skip
        out.append(
            table(["Stream", "Type", "State", "Lag", "Lag per partition", "Dead-lettered",
                   "Detail"], rows, id="health-streams")
        )  # fmt: skip
    return out


def _lag_text(lag: dict[str, int]) -> str:
    """``topic/0: 12, topic/3: 4`` (partitions with nothing waiting are left out)."""
    waiting = [f"{p}: {n}" for p, n in sorted(lag.items()) if n]
    return ", ".join(waiting) or f"0 on {len(lag)} partition(s)"


def summarise(text: str) -> list[Any]:
    """Tables of the interesting counters in a Prometheus text exposition."""
    sums: dict[str, dict[tuple[str, ...], float]] = defaultdict(lambda: defaultdict(float))
    for family in text_string_to_metric_families(text):
        labels = SUMMARISED.get(family.name)
        if labels is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = tuple(sample.labels.get(label, "") for label in labels)
                sums[family.name][key] += sample.value
    out: list[Any] = []
    for name, values in sums.items():
        rows = [[*key, fmt_number(v, digits=0)] for key, v in sorted(values.items()) if v]
        if rows:
            out += [html.H4(name + "_total"), table([*SUMMARISED[name], "count"], rows)]
    return out or [note("No counters yet.")]


def _sidecar(body: dict[str, Any]) -> list[Any]:
    spool = body.get("spool", {})
    used = spool.get("bytes", 0)
    cap = spool.get("max_bytes") or 1
    rows = [
        [name, b.get("type", ""), badge("ok" if b.get("breaker") == "closed" else "degraded"),
         b.get("breaker", ""), str(b.get("lag", "")), str(b.get("delivered_events", "")),
         str(b.get("retries", "")), str(b.get("dead_lettered_events", "")),
         b.get("last_error") or ""]
        for name, b in body.get("backends", {}).items()
    ]  # fmt: skip
    return [
        html.Div(["Status ", badge(body.get("status"))], id="health-sidecar-status"),
        html.Div(
            f"Spool {spool.get('dir', '')}: {used / 2**20:.2f} MiB of {cap / 2**20:.0f} MiB "
            f"({used / cap * 100:.1f} %), last sequence {spool.get('last_seq', 0)}, "
            f"{spool.get('segments', 0)} segment(s)",
            className="muted",
        ),
        table(["Backend", "Type", "State", "Breaker", "Lag (events)", "Delivered", "Retries",
               "Dead-lettered", "Last error"], rows, id="health-backends"),
    ]  # fmt: skip


def register(app: Any, ctx: Any) -> None:
    @app.callback(
        Output("health-target", "children"),
        Output("health-sidecar", "children"),
        Output("health-metrics", "children"),
        Input("health-interval", "n_intervals"),
    )
    def update(_ticks):
        try:
            target = _target(ctx, ctx.api.health())
        except ApiError as exc:
            target = [error_box(str(exc))]
        try:
            metrics = summarise(ctx.api.metrics())
        except ApiError as exc:
            metrics = [error_box(str(exc))]
        if ctx.sidecar is None:
            sidecar = [note("Not watched: start the dashboard with --sidecar URL.")]
        else:
            try:
                sidecar = _sidecar(ctx.sidecar.health())
            except ApiError as exc:
                sidecar = [error_box(str(exc))]
        return target, sidecar, metrics
