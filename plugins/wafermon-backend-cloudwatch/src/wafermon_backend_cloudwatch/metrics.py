"""CloudWatch metrics from events, for PutMetricData: pure functions, limits checked here.

Why PutMetricData and not the embedded metric format (EMF): EMF metrics exist only once the
real CloudWatch Logs service has extracted them from log lines, so they would depend on the
logs part being on, and nothing but AWS itself can show that they arrive (moto stores EMF
lines as plain logs); PutMetricData works alone, is tested end to end against moto with
GetMetricData, and with ``StatisticValues`` one datum carries a whole minute of jobs, so a
busy site costs one call per 1,000 (metric, dimensions, minute) cells, not per job.

Metrics (unit), per entity type (``Job...`` and ``Subjob...``): ``...sStarted``,
``...sFinished``, ``...sFailed`` (Count) and, on finished/failed events that carry them,
``...Duration``, ``...CpuUser``, ``...CpuSystem`` (Seconds) and ``...MemoryMax`` (Megabytes).
Each goes out twice: with dimensions Site, and Site + App (CloudWatch matches dimension sets
exactly, so a per-site trend needs its own set), plus the configured static dimensions.
Limits (AWS PutMetricData): at most 1,000 datums per call and 30 dimensions per datum;
timestamps at most two weeks back and two hours ahead (older events get no metrics).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from wafermon import Event, Kind

MAX_DATUMS = 1000
MAX_AGE = timedelta(days=14) - timedelta(minutes=10)
MAX_AHEAD = timedelta(hours=2) - timedelta(minutes=10)
_COUNTS = {Kind.STARTED: "sStarted", Kind.FINISHED: "sFinished", Kind.FAILED: "sFailed"}
_FIGURES = (
    ("duration_s", "Duration", "Seconds"),
    ("cpu_user_s", "CpuUser", "Seconds"),
    ("cpu_system_s", "CpuSystem", "Seconds"),
    ("mem_max_mb", "MemoryMax", "Megabytes"),
)
#: Every metric name the emitter writes -> its unit (what a trend can be asked for).
METRIC_UNITS = {
    prefix + name: unit
    for prefix in ("Job", "Subjob")
    for name, unit in [
        *((suffix, "Count") for suffix in _COUNTS.values()),
        *((name, unit) for _, name, unit in _FIGURES),
    ]
}


def _values(event: Event) -> Iterator[tuple[str, str, float]]:
    prefix = "Job" if event.entity.type == "job" else "Subjob"
    if event.kind in _COUNTS:
        yield prefix + _COUNTS[Kind(event.kind)], "Count", 1.0
    if event.kind in (Kind.FINISHED, Kind.FAILED):
        for field, name, unit in _FIGURES:
            value = getattr(event.metrics, field)
            if value is not None:
                yield prefix + name, unit, float(value)


def dimension_sets(
    site_id: str, app: str, static: Mapping[str, str]
) -> list[tuple[tuple[str, str], ...]]:
    extra = tuple(sorted(static.items()))
    return [(("Site", site_id), *extra), (("Site", site_id), ("App", app), *extra)]


def metric_data(
    events: Sequence[Event], static: Mapping[str, str], now: datetime | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The datums for ``events``, aggregated per (metric, dimensions, minute), and how many
    events were too old or too far ahead to be counted."""
    now = now or datetime.now(UTC)
    cells: dict[tuple[Any, ...], list[float]] = {}
    skipped = 0
    for event in events:
        if not now - MAX_AGE <= event.time <= now + MAX_AHEAD:
            skipped += 1
            continue
        minute = event.time.replace(second=0, microsecond=0)
        for dims in dimension_sets(event.site_id, event.app.name, static):
            for name, unit, value in _values(event):
                cell = cells.setdefault((name, unit, dims, minute), [0, 0.0, value, value])
                cell[0] += 1
                cell[1] += value
                cell[2] = min(cell[2], value)
                cell[3] = max(cell[3], value)
    datums = [
        {
            "MetricName": name,
            "Unit": unit,
            "Timestamp": minute,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
            "StatisticValues": {"SampleCount": n, "Sum": total, "Minimum": low, "Maximum": high},
        }
        for (name, unit, dims, minute), (n, total, low, high) in cells.items()
    ]
    return datums, skipped


def chunks(datums: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(datums), MAX_DATUMS):
        yield datums[i : i + MAX_DATUMS]
