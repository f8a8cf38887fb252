"""Job detail: the job's state, its subjobs on a timeline (Gantt), their duration, CPU and
memory, and the job's own events. One request: ``/v1/jobs/{id}`` (with ``site`` on central)."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from .. import charts
from ..client import ApiError
from ..ui import (
    DASH,
    badge,
    error_box,
    fmt_duration,
    fmt_number,
    fmt_time,
    job_link,
    missing_sites,
    note,
    table,
)

EVENTS_SHOWN = 200


def _facts(job: dict[str, Any], site: str | None) -> html.Dl:
    pairs = [
        ("Status", badge(job["status"])),
        ("Site", site or job["site_id"]),
        ("App", f"{job['app']} {job.get('app_version') or ''}".strip()),
        ("Lot", job.get("business_key") or DASH),
        ("Started", fmt_time(job["start_time"])),
        ("Finished", fmt_time(job.get("finished_at"))),
        ("Duration", fmt_duration(job.get("duration_s"))),
        ("Progress", DASH if job.get("progress") is None else f"{job['progress'] * 100:.0f} %"),
        ("CPU user / system", f"{fmt_number(job.get('cpu_user_s'), 's')} / "
                              f"{fmt_number(job.get('cpu_system_s'), 's')}"),
        ("Max memory", fmt_number(job.get("mem_max_mb"), "MB", 0)),
        ("Events", str(job.get("event_count", ""))),
    ]  # fmt: skip
    if job.get("parent_id"):
        pairs.insert(1, ("Parent job", job_link({"entity_id": job["parent_id"], "site": site})))
    meta = job.get("metadata") or {}
    pairs += [(f"metadata.{k}", str(v)) for k, v in sorted(meta.items())]
    items: list[Any] = []
    for label, value in pairs:
        items += [html.Dt(label), html.Dd(value)]
    return html.Dl(items, className="facts", id="detail-facts")


def layout(ctx: Any, job_id: str, query: dict[str, str]) -> html.Div:
    site = query.get("site") or None
    try:
        found = ctx.api.job(job_id, site=site)
    except ApiError as exc:
        return html.Div([html.H2(f"Job {job_id}"), error_box(str(exc))])
    if found is None:
        return html.Div([html.H2(f"Job {job_id}"), note("No site has a job with this id.")])
    job, subjobs, events = found["job"], found["subjobs"], found["events"]
    site = found.get("site", site)
    kind = "Subjob" if job["entity_type"] == "subjob" else "Job"
    error = job.get("error")
    subjob_rows = [
        [
            job_link({**s, "site": site}),
            s.get("sub_key") or "",
            badge(s["status"]),
            fmt_time(s["start_time"]),
            fmt_duration(s.get("duration_s")),
            fmt_number(s.get("cpu_user_s")),
            fmt_number(s.get("mem_max_mb"), digits=0),
            (s.get("error") or {}).get("message", ""),
        ]
        for s in subjobs
    ]
    event_rows = [
        [
            fmt_time(e["time"]),
            e["kind"],
            e["entity"]["type"],
            fmt_duration((e.get("metrics") or {}).get("duration_s")),
            "" if (e.get("metrics") or {}).get("progress") is None
            else f"{e['metrics']['progress'] * 100:.0f} %",
            (e.get("error") or {}).get("message", ""),
        ]
        for e in events[:EVENTS_SHOWN]
    ]  # fmt: skip
    shown = "" if len(events) <= EVENTS_SHOWN else f", first {EVENTS_SHOWN} shown"
    events_title = f"Events ({len(events)}{shown})"
    return html.Div(
        [
            html.H2([f"{kind} {job['entity_id']} ", badge(job["status"])], id="detail-title"),
            missing_sites(found),
            error_box(f"{error['type']}: {error['message']}") if error else None,
            _facts(job, site),
            html.H3(f"Subjobs ({len(subjobs)})"),
            dcc.Graph(id="detail-gantt", figure=charts.gantt(subjobs)),
            html.Div(
                [
                    dcc.Graph(
                        id="detail-duration",
                        figure=charts.per_subjob(
                            subjobs, "Duration per subjob", {"duration_s": "duration"}, "s"
                        ),
                    ),
                    dcc.Graph(
                        id="detail-cpu",
                        figure=charts.per_subjob(
                            subjobs,
                            "CPU per subjob",
                            {"cpu_user_s": "user", "cpu_system_s": "system"},
                            "s",
                        ),
                    ),
                    dcc.Graph(
                        id="detail-memory",
                        figure=charts.per_subjob(
                            subjobs, "Peak memory per subjob", {"mem_max_mb": "max memory"}, "MB"
                        ),
                    ),
                ],
                className="grid3",
            ),
            table(
                ["Subjob", "Sub key", "Status", "Started", "Duration", "CPU (s)",
                 "Max mem (MB)", "Error"],
                subjob_rows,
                id="detail-subjobs",
            ) if subjobs else note("No subjobs."),
            html.H3(events_title),
            table(["Time", "Kind", "Entity", "Duration", "Progress", "Error"], event_rows,
                  id="detail-events"),
        ]
    )  # fmt: skip
