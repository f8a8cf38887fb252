"""When a monitored job is due, through cronsim.

Why cronsim: it is small, has no dependencies, is maintained by healthchecks.io's author for
exactly this use (expected-job schedules) and handles daylight-saving gaps and repeats with
``zoneinfo`` time zones the way people expect (a 02:30 job on the spring-forward day runs at
03:00, once on the fall-back day), where croniter has had long-standing DST bugs and changed
hands twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError


def check_cron(expr: str) -> str | None:
    """Why ``expr`` is not a cron expression (None if it is)."""
    try:
        CronSim(expr, datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")))
    except CronSimError as exc:
        return f"not a cron expression ({exc}): {expr!r}"
    return None


def previous_due(schedule, t: datetime, last_start: datetime | None, origin: datetime):
    """The latest time at or before ``t`` the job was due to start, or None (not due yet).

    ``every``: one interval after the last run's start (or after ``origin``, when the monitor
    was created, if it never ran). ``cron``: the cron time at or before ``t`` in the zone.
    """
    if schedule.every is not None:
        due = (last_start or origin) + timedelta(seconds=schedule.every)
        return due if due <= t else None
    local = t.astimezone(ZoneInfo(schedule.timezone))
    due = next(CronSim(schedule.cron, local + timedelta(seconds=1), reverse=True))
    return due if due >= origin else None


def next_due(schedule, t: datetime, last_start: datetime | None, origin: datetime) -> datetime:
    """The first time after ``t`` (or the pending due time) the job is expected to start."""
    if schedule.every is not None:
        return (last_start or origin) + timedelta(seconds=schedule.every)
    local = t.astimezone(ZoneInfo(schedule.timezone))
    return next(CronSim(schedule.cron, local))
