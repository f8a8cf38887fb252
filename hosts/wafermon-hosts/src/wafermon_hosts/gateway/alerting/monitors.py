"""Expected jobs: a monitor's state from its runs at the site's stream time.

States: ``ok`` (the last run succeeded and the next is not due), ``waiting`` (no run yet, not
due), ``running``, ``late`` (due + grace passed with no start), ``overdue`` (running longer
than ``max_runtime``), ``failing`` (``failures_to_alert`` failed runs in a row, until
``successes_to_resolve`` successes in a row), ``unknown`` (the site is not reporting: nothing
can be said, and nothing is alerted). A run shorter than ``min_runtime`` counts as failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import attrs

from wafermon.store import EntityState

from .rules import Finding
from .schedule import next_due, previous_due
from .settings import MonitorSpec

RECENT_RUNS = 20


@attrs.frozen
class MonitorResult:
    spec: MonitorSpec
    source: str
    site_id: str
    state: str
    last_run: EntityState | None
    next_expected_at: datetime | None
    recent: list[EntityState]
    findings: list[tuple[str, Finding]]  # (kind: missed | overdue | failing, finding)


def matches(spec: MonitorSpec, run: EntityState, site_id: str) -> bool:
    return (
        run.site_id == site_id
        and run.app == spec.app
        and (
            spec.business_key is None
            or (run.business_key is not None and fnmatchcase(run.business_key, spec.business_key))
        )
    )


def duration(run: EntityState) -> float | None:
    if run.duration_s is not None:
        return run.duration_s
    if run.finished_at is not None:
        return (run.finished_at - run.start_time).total_seconds()
    return None


def _failed(spec: MonitorSpec, run: EntityState) -> bool:
    if run.status == "failed":
        return True
    took = duration(run)
    return spec.min_runtime is not None and took is not None and took < spec.min_runtime


def evaluate(
    spec: MonitorSpec,
    source: str,
    site_id: str,
    runs: list[EntityState],
    t: datetime,
    origin: datetime,
    *,
    stalled: bool,
    failing_active: bool,
) -> MonitorResult:
    """One monitor at stream time ``t``; ``runs`` are its runs, oldest start first."""
    runs = [r for r in runs if r.start_time <= t]
    last = runs[-1] if runs else None
    recent = runs[-RECENT_RUNS:]
    last_start = last.start_time if last else None
    pending = previous_due(spec.schedule, t, last_start, origin)
    early = timedelta(seconds=spec.grace)  # a run starting up to grace early counts
    if pending is not None and last_start is not None and last_start >= pending - early:
        pending = None  # this due time's run started
    upcoming = pending or next_due(spec.schedule, t, last_start, origin)
    if stalled:
        return MonitorResult(spec, source, site_id, "unknown", last, upcoming, recent, [])
    labels = {"site_id": site_id, "monitor": spec.name, "app": spec.app}
    found: list[tuple[str, Finding]] = []
    state = "waiting" if last is None else "ok"
    if last is not None and last.status == "running":
        state = "running"
        age = (t - last.start_time).total_seconds()
        if spec.max_runtime is not None and age > spec.max_runtime:
            state = "overdue"
            summary = f"monitor {spec.name}: {last.entity_id} running for {age:.0f}s"
            overdue = {"job_id": last.entity_id, "running_s": round(age)}
            found.append(("overdue", Finding(dict(labels), overdue, summary)))
    ended = [r for r in runs if r.status != "running"]
    streak_failed = streak_ok = 0
    for run in reversed(ended):
        if _failed(spec, run):
            if streak_ok:
                break
            streak_failed += 1
        else:
            if streak_failed:
                break
            streak_ok += 1
    failing = (
        streak_ok < spec.successes_to_resolve
        if failing_active
        else streak_failed >= spec.failures_to_alert
    )
    if failing:
        if state not in ("overdue", "running"):
            state = "failing"
        summary = f"monitor {spec.name}: {streak_failed} failed run(s) in a row"
        figures: dict[str, Any] = {"failed_in_a_row": streak_failed}
        if ended:
            figures["job_id"] = ended[-1].entity_id
        found.append(("failing", Finding(dict(labels), figures, summary)))
    if pending is not None and t > pending + timedelta(seconds=spec.grace):
        if state in ("ok", "waiting", "failing"):
            state = "late" if state != "failing" else state
        summary = f"monitor {spec.name}: no run started since {pending.isoformat()}"
        found.append(("missed", Finding(dict(labels), {"due_at": pending.isoformat()}, summary)))
    return MonitorResult(spec, source, site_id, state, last, upcoming, recent, found)
