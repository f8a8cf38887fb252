"""What a plugin implements: Emitter, QueryAdapter, Notifier, StreamConsumer, and the Query
they answer.

These are the contracts the hosts program against. Each component is built by the core from a
site-config entry: ``cls(name=..., settings=...)`` where ``settings`` is an instance of the
component's ``Settings`` attrs class, structured from the entry's ``config`` mapping (so a typo
in a plugin's settings is reported with its key path and line, like any core setting).
Components must never log or repr a ``Secret`` value.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import attrs

from .errors import FieldValueError
from .events import ENTITY_TYPES, Event, Kind
from .pages import decode_cursor


@attrs.frozen
class NoSettings:
    """Settings class for components that take none."""


@attrs.frozen
class Health:
    """A component's own view of whether it can do its work right now."""

    ok: bool
    detail: str = ""


class Component(abc.ABC):  # noqa: B024 - the kinds below declare the abstract methods
    """Lifecycle shared by emitters, query adapters and notifiers."""

    Settings: ClassVar[type] = NoSettings

    def __init__(self, name: str, settings: Any) -> None:
        self.name = name
        self.settings = settings

    async def start(self) -> None:
        """Open connections, create directories. Raise RetryableError if the backend is down."""

    async def health(self) -> Health:
        """Cheap check used by /v1/healthz; must not raise."""
        return Health(ok=True)

    async def close(self) -> None:
        """Flush and release resources. Called once, also after a failed start."""

    def stats(self) -> dict[str, float]:
        """Numbers a host exports on /metrics (e.g. connection pool use); cheap, never raises."""
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Emitter(Component):
    """A backend that stores or forwards event batches.

    ``emit`` returns only once the batch is durable in the backend (that is what lets the
    sidecar acknowledge and drop it). It raises ``RetryableError`` for transient failures and
    ``PermanentError`` for input the backend will never accept; a PermanentError naming
    ``event_ids`` means every other event of the batch was stored. Emit is called with batches
    that may repeat events already sent (at-least-once delivery): a backend that can should
    deduplicate by ``event_id``. A caller may cancel ``emit`` (a timeout): the batch then
    counts as not delivered and is sent again, so a cancelled emit must leave the backend able
    to take that retry.
    """

    @abc.abstractmethod
    async def emit(self, batch: Sequence[Event]) -> None: ...


# -- queries ------------------------------------------------------------------------------------

STATUSES = {
    "running": frozenset({Kind.STARTED, Kind.PROGRESS}),
    "finished": frozenset({Kind.FINISHED}),
    "failed": frozenset({Kind.FAILED}),
}
MAX_QUERY_LIMIT = 10_000


def _optional_choice(allowed: Any) -> Callable[..., None]:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and value not in allowed:
            choices = ", ".join(sorted(allowed))
            raise FieldValueError(attribute.name, f"must be one of {choices}, got {value!r}")

    return check


def _optional_utc(_inst: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise FieldValueError(attribute.name, "must be a timezone-aware datetime")


def _limit(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1 <= value <= MAX_QUERY_LIMIT:
        raise FieldValueError(attribute.name, f"must be between 1 and {MAX_QUERY_LIMIT}")


@attrs.frozen(kw_only=True)
class Query:
    """Which events to return. All filters are optional and combine with AND.

    The time range is half-open, ``start <= time < end``. ``status`` selects events by the
    state they report: ``running`` (started, progress), ``finished`` or ``failed``. Results come
    in ``Event.sort_key`` order (time, then event_id); ``cursor`` continues after the last
    event of a previous page.
    """

    start: datetime | None = attrs.field(default=None, validator=_optional_utc)
    end: datetime | None = attrs.field(default=None, validator=_optional_utc)
    site_id: str | None = None
    app: str | None = None
    entity_type: str | None = attrs.field(default=None, validator=_optional_choice(ENTITY_TYPES))
    entity_id: str | None = None
    status: str | None = attrs.field(default=None, validator=_optional_choice(STATUSES))
    business_key: str | None = None
    sub_key: str | None = None
    limit: int = attrs.field(default=1000, validator=_limit)
    cursor: str | None = None
    parent_id: str | None = None  # subjobs of this job (a filter adapters may push down)

    def matches(self, event: Event) -> bool:
        """Whether an event passes every filter (not the cursor). Scanning adapters use this."""
        return (
            (self.start is None or event.time >= self.start)
            and (self.end is None or event.time < self.end)
            and (self.site_id is None or event.site_id == self.site_id)
            and (self.app is None or event.app.name == self.app)
            and (self.entity_type is None or event.entity.type == self.entity_type)
            and (self.entity_id is None or event.entity.id == self.entity_id)
            and (self.status is None or event.kind in STATUSES[self.status])
            and (self.business_key is None or event.entity.business_key == self.business_key)
            and (self.sub_key is None or event.entity.sub_key == self.sub_key)
            and (self.parent_id is None or event.entity.parent_id == self.parent_id)
        )

    def after_cursor(self) -> tuple[datetime, UUID] | None:
        """The sort key the cursor points past, or None on the first page."""
        return None if self.cursor is None else decode_cursor(self.cursor)


@attrs.frozen
class QueryResult:
    """One page of events in sort-key order; ``next_cursor`` is None on the last page."""

    events: list[Event]
    next_cursor: str | None = None


class QueryAdapter(Component):
    """A source the gateway can read events from, answering in the unified event format."""

    @abc.abstractmethod
    async def query(self, query: Query) -> QueryResult: ...


# -- metric trends (an optional capability of a query adapter) ----------------------------------

#: Statistics a trend source answers per period: sum, average, minimum, maximum, sample count.
TREND_STATS = ("sum", "avg", "min", "max", "count")
MAX_TREND_POINTS = 1440  # per series: bounds the answer (a day of minutes)
MAX_TREND_SERIES = 20  # series of one ``by_app`` answer
MAX_TREND_PERIOD = 86_400


def _period(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if type(value) is not int or not 60 <= value <= MAX_TREND_PERIOD or value % 60:
        raise FieldValueError(
            attribute.name, f"must be a multiple of 60 from 60 to {MAX_TREND_PERIOD} seconds"
        )


def _utc(_inst: object, attribute: attrs.Attribute[Any], value: datetime) -> None:
    _optional_utc(_inst, attribute, value)
    if value is None:
        raise FieldValueError(attribute.name, "is required")


@attrs.frozen(kw_only=True)
class TrendQuery:
    """One metric of one site over ``start <= time < end``, one ``stat`` value per ``period``
    seconds: the site's total, one ``app``'s, or one series per app (``by_app``).

    At most MAX_TREND_POINTS periods per series, so an answer stays small whatever is asked.
    """

    metric: str
    site_id: str
    start: datetime = attrs.field(validator=_utc)
    end: datetime = attrs.field(validator=_utc)
    period: int = attrs.field(default=300, validator=_period)
    stat: str = attrs.field(default="sum", validator=_optional_choice(TREND_STATS))
    app: str | None = None
    by_app: bool = False

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise FieldValueError("end", "must be after start")
        points = (self.end - self.start).total_seconds() / self.period
        if points > MAX_TREND_POINTS:
            low = -(-(self.end - self.start).total_seconds() // (60 * MAX_TREND_POINTS)) * 60
            raise FieldValueError(
                "period",
                f"{self.period}s gives {points:.0f} points, more than {MAX_TREND_POINTS}: "
                f"use at least {low:.0f}s or a shorter range",
            )
        if self.by_app and self.app is not None:
            raise FieldValueError("by_app", "give either one app or by_app, not both")


@attrs.frozen
class TrendSeries:
    """One line of a trend: ``name`` is the app (or the site for its total); ``points`` are
    (period start, value) oldest first, and a period without data has no point."""

    name: str
    app: str | None
    points: list[tuple[datetime, float]]


class TrendSource(abc.ABC):
    """Mixed into a QueryAdapter whose backend keeps metrics (CloudWatch: GetMetricData), so
    the gateway's ``GET /v1/trends`` and the dashboard's trend view can read them. Optional:
    the gateway offers trends only for the sources that are a TrendSource."""

    @abc.abstractmethod
    def trend_metrics(self) -> Mapping[str, str]:
        """The metric names ``trends`` answers, each with its unit (``JobsFailed``: Count)."""

    @abc.abstractmethod
    async def trends(self, query: TrendQuery) -> list[TrendSeries]:
        """The series for ``query`` (metric is one of ``trend_metrics``); raise like ``query``."""


# -- alerts -------------------------------------------------------------------------------------


ALERT_STATUSES = ("firing", "resolved")


@attrs.frozen(kw_only=True)
class Alert:
    """What an alert rule found, handed to every notifier the rule names.

    One alert is one ``fingerprint`` (the rule plus the labels it matched): the gateway's
    engine notifies when it starts firing and when it is resolved (``status``), and may repeat
    a firing one. ``labels`` say what matched (``site_id``, ``app``, ``business_key``,
    ``job_id``, ``monitor``...); ``description`` is the rendered message template; ``url``
    links to the gateway or dashboard view when the site config names one.
    """

    rule: str
    severity: str  # info | warning | critical
    summary: str
    site_id: str | None = None
    time: datetime | None = None
    event_ids: tuple[UUID, ...] = ()
    details: dict[str, Any] = attrs.Factory(dict)
    fingerprint: str = ""
    status: str = "firing"  # firing | resolved
    labels: dict[str, str] = attrs.Factory(dict)
    description: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None  # set when resolved
    url: str | None = None

    def title(self) -> str:
        """``[FIRING] critical: <summary>`` (or ``[RESOLVED]``): every notifier's headline."""
        summary = " ".join(self.summary.split())
        summary = summary if len(summary) <= 200 else summary[:199] + "…"
        return f"[{self.status.upper()}] {self.severity}: {summary}"

    def facts(self) -> list[tuple[str, str]]:
        """(name, text) pairs a person needs to act, in the order every notifier shows them:
        status, severity, site, app, key, rule, started, resolved; empty ones left out."""

        def when(value: datetime | None) -> str:
            return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else ""

        labels = self.labels
        key = labels.get("business_key") or labels.get("job_id") or labels.get("monitor")
        facts = [
            ("Status", self.status),
            ("Severity", self.severity),
            ("Site", self.site_id or labels.get("site_id") or ""),
            ("App", labels.get("app", "")),
            ("Key", key or ""),
            ("Rule", self.rule),
            ("Started", when(self.starts_at)),
            ("Resolved", when(self.ends_at) if self.status == "resolved" else ""),
        ]
        return [(name, value) for name, value in facts if value]


class Notifier(Component):
    """Delivers alerts to people (mail, chat, pager). Same error contract as Emitter.

    ``notify`` raises ``RetryableError`` when a later attempt may succeed (the engine retries
    with backoff) and ``PermanentError`` when it never will (the engine gives up and records
    the reason on the alert and in /metrics).
    """

    @abc.abstractmethod
    async def notify(self, alert: Alert) -> None: ...


# -- stream consumers ---------------------------------------------------------------------------

#: Header names a consumer puts on a dead-lettered message (values are UTF-8 bytes).
DEAD_LETTER_REASON_HEADER = "wafermon-dead-letter-reason"
DEAD_LETTER_WHERE_HEADER = "wafermon-dead-letter-where"


@attrs.frozen
class StreamMessage:
    """One record from a broker: one event's wire JSON or an NDJSON batch of events.

    ``where`` says where it came from ("wm-events/3@1234", "EVENTS/ingest#57"), for logs and
    dead-letter reasons; ``headers`` are the broker's message headers.
    """

    body: bytes
    where: str
    headers: Mapping[str, bytes] = attrs.Factory(dict)


async def _nothing_to_commit() -> None:
    return None


async def _no_dead_letter(message: StreamMessage, reason: str) -> None:
    raise RuntimeError(f"{message.where}: this batch has no dead-letter destination ({reason})")


@attrs.frozen
class StreamBatch:
    """Messages fetched together, and how to settle them with the broker.

    The consumer supplies ``on_commit`` (acknowledge every message of the batch: Kafka commits
    offset+1 per partition, NATS acks each) and ``on_dead_letter`` (publish one message with
    the reason to the dead-letter topic/subject). A caller dead-letters the messages it cannot
    store, then commits the batch only after the store committed the rest; a batch never
    committed is delivered again (to this or another group member).
    """

    messages: Sequence[StreamMessage] = ()
    on_commit: Callable[[], Awaitable[None]] = _nothing_to_commit
    on_dead_letter: Callable[[StreamMessage, str], Awaitable[None]] = _no_dead_letter

    async def commit(self) -> None:
        """Acknowledge every message; RetryableError if the broker did not take it."""
        if self.messages:
            await self.on_commit()

    async def dead_letter(self, message: StreamMessage, reason: str) -> None:
        """Publish ``message`` with ``reason`` to the dead-letter destination (returns once
        the broker has it); it is settled by the batch's ``commit`` like the others."""
        await self.on_dead_letter(message, reason)

    def __len__(self) -> int:
        return len(self.messages)


class StreamConsumer(Component):
    """Reads a topic/stream as one member of a consumer group (a gateway's stream ingest).

    Built like every component, ``cls(name=..., settings=...)``; ``start`` joins the group,
    ``close`` leaves it without committing anything. ``fetch`` and ``lag`` raise
    ``RetryableError`` while the broker is unreachable; the caller backs off and asks again.
    """

    @abc.abstractmethod
    async def fetch(self, max_messages: int, timeout: float) -> StreamBatch:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` seconds for the first;
        an empty batch on timeout. Never more, and no unbounded prefetch behind it."""

    @abc.abstractmethod
    async def lag(self) -> dict[str, int]:
        """Messages not yet committed, per partition/consumer this member reads
        (``{"wm-events/3": 120}``, ``{"EVENTS/ingest": 42}``)."""
