"""The alerting API's answer bodies (``common.bodies``): the handlers build these Structs and
the OpenAPI components are generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from wafermon.store import EntityState

from ...common.bodies import Body, RequestBody
from .monitors import MonitorResult, duration
from .settings import MonitorSpec

Severity = Literal["info", "warning", "critical"]
Duration = Annotated[str | None, Meta(description="30s, 5m, 1h or 2d")]


class Notification(Body):
    notifier: str
    at: datetime
    attempt: int
    ok: bool
    error: str | None


class Transition(Body):
    status: str
    at: datetime


class Alert(Body):
    fingerprint: str
    rule: str
    severity: Severity
    status: Literal["firing", "resolved"]
    summary: str
    description: str
    site_id: str | None
    labels: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    last_notified_at: datetime | None
    silenced_by: str | None
    inhibited: bool
    notifications: list[Notification]
    transitions: Annotated[
        list[Transition] | UnsetType, Meta(description="Only in GET /v1/alerts/{fingerprint}.")
    ] = UNSET

    @classmethod
    def of(cls, alert: dict[str, Any]) -> Alert:
        """An alert as the alert state keeps it (a row with its notifications)."""
        return cls(
            fingerprint=alert["fingerprint"],
            rule=alert["rule"],
            severity=alert["severity"],
            status=alert["status"],
            summary=alert["summary"],
            description=alert["description"],
            site_id=alert.get("site_id"),
            labels=alert["labels"],
            starts_at=alert["starts_at"],
            ends_at=alert.get("ends_at"),
            last_notified_at=alert.get("last_notified_at"),
            silenced_by=alert.get("silenced_by"),
            inhibited=bool(alert.get("inhibited")),
            notifications=[Notification(**n) for n in alert.get("notifications", [])],
            transitions=[Transition(**t) for t in alert["transitions"]]
            if "transitions" in alert
            else UNSET,
        )


class AlertPage(Body):
    alerts: list[Alert]
    next_cursor: str | None


class Schedule(Body):
    """Exactly one of every (an interval) or cron (with a time zone)."""

    every: Duration | UnsetType = UNSET
    cron: Annotated[str | UnsetType, Meta(description="Five-field cron expression.")] = UNSET
    timezone: Annotated[str | UnsetType, Meta(description="IANA zone (default UTC).")] = UNSET


class Run(Body):
    job_id: str
    status: Literal["running", "finished", "failed"]
    started_at: datetime
    duration_s: float | None
    finished_at: datetime | UnsetType | None = UNSET

    @classmethod
    def of(cls, run: EntityState, *, full: bool) -> Run:
        return cls(
            job_id=run.entity_id,
            status=run.status,  # type: ignore[arg-type]  # the store's statuses
            started_at=run.start_time,
            duration_s=duration(run),
            finished_at=run.finished_at if full else UNSET,
        )


class Monitor(Body):
    """An expected job; state and runs only in GET /v1/monitors."""

    name: str
    site_id: str | None
    app: str
    business_key: Annotated[str | None, Meta(description="fnmatch pattern, e.g. lot-*")]
    schedule: Schedule
    grace: Duration
    max_runtime: Duration
    min_runtime: Duration
    failures_to_alert: Annotated[int, Meta(ge=1)]
    successes_to_resolve: Annotated[int, Meta(ge=1)]
    severity: Severity
    notifiers: list[str] | None
    source: Literal["config", "api", "sdk"]
    state: (
        Literal["ok", "waiting", "running", "late", "overdue", "failing", "unknown"] | UnsetType
    ) = UNSET
    last_run: Run | UnsetType | None = UNSET
    next_expected_at: datetime | UnsetType | None = UNSET
    recent_runs: list[Run] | UnsetType = UNSET

    @classmethod
    def of(cls, spec: MonitorSpec, source: str) -> Monitor:
        """The monitor as declared (``MonitorSpec.as_json``, what the alert state keeps)."""
        data = spec.as_json(source)
        return cls(**{**data, "schedule": Schedule(**data["schedule"])})

    @classmethod
    def view(cls, result: MonitorResult) -> Monitor:
        """The monitor with its site, state, last, next and recent runs."""
        monitor = cls.of(result.spec, result.source)
        monitor.site_id = result.site_id
        monitor.state = result.state  # type: ignore[assignment]  # the engine's states
        monitor.last_run = None if result.last_run is None else Run.of(result.last_run, full=True)
        monitor.next_expected_at = result.next_expected_at
        monitor.recent_runs = [Run.of(r, full=False) for r in result.recent]
        return monitor


class MonitorList(Body):
    monitors: list[Monitor]


class Silence(Body):
    id: str
    matchers: dict[str, str]
    author: str
    reason: str
    starts_at: datetime
    ends_at: datetime
    active: bool

    @classmethod
    def of(cls, silence: dict[str, Any], now: datetime) -> Silence:
        """A silence as the alert state keeps it, with whether it is active at ``now``."""
        return cls(**silence, active=silence["starts_at"] <= now < silence["ends_at"])


class SilenceList(Body):
    silences: list[Silence]


#: The answer types whose components the gateway's document carries.
# -- request bodies ----------------------------------------------------------------------------

DurationIn = Annotated[str | float | None, Meta(description="30, 30s, 5m, 1h or 2d")]
TimeIn = Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})]
Ignored = Annotated[str | UnsetType, Meta(description="Ignored (a field of the answer).")]


class ScheduleRequest(RequestBody):
    """Exactly one of every (an interval) or cron (with a time zone)."""

    every: DurationIn | UnsetType = UNSET
    cron: Annotated[str | UnsetType | None, Meta(description="Five-field cron expression.")] = UNSET
    timezone: Annotated[str | UnsetType, Meta(description="IANA zone (default UTC).")] = UNSET


class MonitorRequest(RequestBody, kw_only=True):
    """PUT /v1/monitors/{name}: an expected job (defaults as in the site config)."""

    name: Annotated[str | UnsetType, Meta(description="Ignored: the path names it.")] = UNSET
    app: str
    schedule: ScheduleRequest
    site_id: str | None = None
    business_key: Annotated[str | None, Meta(description="fnmatch pattern, e.g. lot-*")] = None
    grace: DurationIn | UnsetType = UNSET
    max_runtime: DurationIn | UnsetType = UNSET
    min_runtime: DurationIn | UnsetType = UNSET
    failures_to_alert: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    successes_to_resolve: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    severity: Severity | UnsetType = UNSET
    notifiers: list[str] | None = None
    source: Ignored = UNSET
    state: Ignored = UNSET


class SilenceRequest(RequestBody):
    """POST /v1/silences: ends_at or duration is needed (a silence must expire)."""

    matchers: Annotated[
        dict[str, Annotated[str, Meta(min_length=1)]],
        Meta(min_length=1, description="label: fnmatch pattern; all must match"),
    ]
    author: Annotated[str, Meta(min_length=1)]
    reason: Annotated[str, Meta(min_length=1)]
    starts_at: TimeIn = None
    ends_at: TimeIn = None
    duration: DurationIn = None


TYPES = (AlertPage, MonitorList, SilenceList, MonitorRequest, SilenceRequest)
