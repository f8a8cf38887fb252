"""The managed store contract: what a gateway needs from the store it owns.

A managed store is an Emitter (the sidecar and SDKs write to it) and a QueryAdapter (the
unified view reads it) that also keeps the *current state* of every job and subjob. That state
is derived from events by ``EntityState.merge``, which is commutative, associative and
idempotent-safe, so events arriving out of order, duplicated (deduplicated by event_id before
merging) or late all end in the same row. Every store implementation must mirror these rules;
they are the reference.

Rules, per entity (job or subjob, keyed by entity id):
- status: failed if any event failed, else finished if any finished, else running.
- started_at: time of the earliest ``started`` event, or the earliest event if none started.
- finished_at: time of the latest finished/failed event; updated_at: time of the latest event.
- metrics (duration, CPU, memory) and metadata: from the *latest* event that carries them,
  latest meaning greatest (kind rank, time, event_id) with started < progress < finished/failed.
- progress: from the latest (time, event_id) event that reports one.
- error: from the latest failed event. Identity (app, keys, parent) from the latest event.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from .errors import FieldValueError
from .events import ENTITY_TYPES, ErrorInfo, Event, Kind
from .interfaces import Emitter, QueryAdapter

if TYPE_CHECKING:
    from .wire import WireEvent

KIND_RANK: dict[str, int] = {Kind.STARTED: 0, Kind.PROGRESS: 1, Kind.FINISHED: 2, Kind.FAILED: 2}
STATUS_RANK = {"running": 0, "finished": 1, "failed": 2}
KIND_STATUS: dict[str, str] = {
    Kind.STARTED: "running",
    Kind.PROGRESS: "running",
    Kind.FINISHED: "finished",
    Kind.FAILED: "failed",
}

#: Fields that travel together: each group comes from the event with the later stamp. Stores
#: that merge in their own language (SQL) read this, so the groups are written down once.
MERGE_GROUPS: dict[str, tuple[str, ...]] = {
    "identity_stamp": (
        "app",
        "app_version",
        "parent_id",
        "business_key",
        "sub_key",
        "site_id",
        "entity_type",
    ),
    "metrics_stamp": ("duration_s", "cpu_user_s", "cpu_system_s", "mem_max_mb"),
    "metadata_stamp": ("metadata",),
    "progress_stamp": ("progress",),
    "error_stamp": ("error",),
}

#: (rank, time, event_id) of the event a group of fields came from; None if no event set them.
Stamp = tuple[int, datetime, str] | None


def _later(a: Stamp, b: Stamp) -> bool:
    return b is not None and (a is None or b > a)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


@attrs.frozen(kw_only=True)
class EntityState:
    """Current state of one job or subjob. ``merge`` folds in another partial state."""

    entity_type: str
    entity_id: str
    site_id: str
    app: str
    app_version: str | None = None
    parent_id: str | None = None
    business_key: str | None = None
    sub_key: str | None = None
    status: str = "running"
    started_at: datetime | None = None  # earliest 'started' event
    first_seen_at: datetime
    finished_at: datetime | None = None
    updated_at: datetime
    duration_s: float | None = None
    cpu_user_s: float | None = None
    cpu_system_s: float | None = None
    mem_max_mb: float | None = None
    progress: float | None = None
    error: ErrorInfo | None = None
    metadata: dict[str, Any] = attrs.Factory(dict)
    event_count: int = 1
    # Where each group of fields came from, so merging is order-independent.
    identity_stamp: Stamp = None
    metrics_stamp: Stamp = None
    metadata_stamp: Stamp = None
    progress_stamp: Stamp = None
    error_stamp: Stamp = None

    @property
    def start_time(self) -> datetime:
        """When the entity started: its started event, else the first event seen."""
        return self.started_at or self.first_seen_at

    @classmethod
    def from_event(cls, event: Event) -> EntityState:
        stamp = (KIND_RANK[event.kind], event.time, str(event.event_id))
        m = event.metrics
        has_metrics = any(
            v is not None for v in (m.duration_s, m.cpu_user_s, m.cpu_system_s, m.mem_max_mb)
        )
        terminal = event.kind in (Kind.FINISHED, Kind.FAILED)
        return cls(
            entity_type=event.entity.type,
            entity_id=event.entity.id,
            site_id=event.site_id,
            app=event.app.name,
            app_version=event.app.version,
            parent_id=event.entity.parent_id,
            business_key=event.entity.business_key,
            sub_key=event.entity.sub_key,
            status=KIND_STATUS[event.kind],
            started_at=event.time if event.kind == Kind.STARTED else None,
            first_seen_at=event.time,
            finished_at=event.time if terminal else None,
            updated_at=event.time,
            duration_s=m.duration_s,
            cpu_user_s=m.cpu_user_s,
            cpu_system_s=m.cpu_system_s,
            mem_max_mb=m.mem_max_mb,
            progress=m.progress,
            error=event.error,
            metadata=event.metadata,
            event_count=1,
            identity_stamp=stamp,
            metrics_stamp=stamp if has_metrics else None,
            metadata_stamp=stamp if event.metadata else None,
            progress_stamp=(0, *stamp[1:]) if m.progress is not None else None,  # time order
            error_stamp=stamp if event.error is not None else None,
        )

    def merge(self, other: EntityState) -> EntityState:
        """The state after both sets of events; the same whichever side is ``self``."""
        a, b = self, other
        changes: dict[str, Any] = {
            "status": max(a.status, b.status, key=STATUS_RANK.__getitem__),
            "started_at": _min(a.started_at, b.started_at),
            "first_seen_at": min(a.first_seen_at, b.first_seen_at),
            "finished_at": _max(a.finished_at, b.finished_at),
            "updated_at": max(a.updated_at, b.updated_at),
            "event_count": a.event_count + b.event_count,
        }
        for stamp, fields in MERGE_GROUPS.items():
            source = b if _later(getattr(a, stamp), getattr(b, stamp)) else a
            changes[stamp] = getattr(source, stamp)
            changes.update({f: getattr(source, f) for f in fields})
        return attrs.evolve(a, **changes)


def fold(events: Sequence[Event]) -> dict[str, EntityState]:
    """Entity id -> state for a set of (deduplicated) events.

    Equal to merging ``EntityState.from_event`` of every event, but one pass per entity
    without building a state per event: stores call this on every ingested batch.
    """
    groups: dict[str, list[Event]] = {}
    for event in events:
        group = groups.get(event.entity.id)
        if group is None:
            groups[event.entity.id] = [event]
        else:
            group.append(event)
    return {entity_id: _fold_one(group) for entity_id, group in groups.items()}


_TERMINAL = frozenset((Kind.FINISHED, Kind.FAILED))
_STATUS_OF_RANK = {rank: status for status, rank in STATUS_RANK.items()}
_KIND_STATUS_RANK: dict[str, int] = {k: STATUS_RANK[status] for k, status in KIND_STATUS.items()}


def _fold_one(group: list[Event]) -> EntityState:
    """One pass over an entity's events. Stamps compare as (rank, time, event_id); ids are
    compared as UUIDs, whose order is the order of their canonical text, and only the
    winners' ids are turned into text."""
    kind_rank, status_rank = KIND_RANK, _KIND_STATUS_RANK
    last = group[0]
    top = (kind_rank[last.kind], last.time, last.event_id)
    metrics_of = metadata_of = progress_of = error_of = None
    metrics_top = metadata_top = error_top = progress_top = None
    status = 0
    first_seen = updated = last.time
    started = ended = None
    for e in group:
        when, kind = e.time, e.kind
        stamp = (kind_rank[kind], when, e.event_id)
        if stamp > top:
            top, last = stamp, e
        if when < first_seen:
            first_seen = when
        if when > updated:
            updated = when
        if (rank := status_rank[kind]) > status:
            status = rank
        if kind == Kind.STARTED:
            if started is None or when < started:
                started = when
        elif kind in _TERMINAL and (ended is None or when > ended):
            ended = when
        m = e.metrics
        if (
            m.duration_s is not None
            or m.cpu_user_s is not None
            or m.cpu_system_s is not None
            or m.mem_max_mb is not None
        ) and (metrics_top is None or stamp > metrics_top):
            metrics_top, metrics_of = stamp, e
        if e.metadata and (metadata_top is None or stamp > metadata_top):
            metadata_top, metadata_of = stamp, e
        if m.progress is not None and (progress_top is None or stamp[1:] > progress_top):
            progress_top, progress_of = stamp[1:], e
        if e.error is not None and (error_top is None or stamp > error_top):
            error_top, error_of = stamp, e
    latest = metrics_of.metrics if metrics_of is not None else None
    return EntityState(
        entity_type=last.entity.type,
        entity_id=last.entity.id,
        site_id=last.site_id,
        app=last.app.name,
        app_version=last.app.version,
        parent_id=last.entity.parent_id,
        business_key=last.entity.business_key,
        sub_key=last.entity.sub_key,
        status=_STATUS_OF_RANK[status],
        started_at=started,
        first_seen_at=first_seen,
        finished_at=ended,
        updated_at=updated,
        duration_s=None if latest is None else latest.duration_s,
        cpu_user_s=None if latest is None else latest.cpu_user_s,
        cpu_system_s=None if latest is None else latest.cpu_system_s,
        mem_max_mb=None if latest is None else latest.mem_max_mb,
        progress=progress_of.metrics.progress if progress_of is not None else None,
        error=error_of.error if error_of is not None else None,
        metadata=metadata_of.metadata if metadata_of is not None else {},
        event_count=len(group),
        identity_stamp=_text_stamp(top),
        metrics_stamp=_text_stamp(metrics_top),
        metadata_stamp=_text_stamp(metadata_top),
        progress_stamp=_text_stamp(progress_top),  # time order: rank 0
        error_stamp=_text_stamp(error_top),
    )


def _text_stamp(stamp: tuple[Any, ...] | None) -> Any:
    """A stamp with its event_id as text, as ``EntityState`` keeps it (None stays None)."""
    if stamp is None:
        return None
    if len(stamp) == 2:  # progress: (time, event_id), rank added by the caller
        return (0, stamp[0], str(stamp[1]))
    return (stamp[0], stamp[1], str(stamp[2]))


# -- reading entities ---------------------------------------------------------------------------

ENTITY_SORTS = ("-start_time", "start_time", "-updated_at", "updated_at")
MAX_ENTITY_LIMIT = 1000


def _check(allowed: Any, *, optional: bool = True) -> Callable[..., None]:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if value not in allowed:
            choices = ", ".join(sorted(allowed))
            raise FieldValueError(attribute.name, f"must be one of {choices}, got {value!r}")

    return check


def _entity_limit(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if type(value) is not int or not 1 <= value <= MAX_ENTITY_LIMIT:
        raise FieldValueError(attribute.name, f"must be between 1 and {MAX_ENTITY_LIMIT}")


@attrs.frozen(kw_only=True)
class EntityQuery:
    """Filters for GET /v1/jobs and /v1/subjobs. The time range applies to ``start_time``."""

    entity_type: str = attrs.field(default="job", validator=_check(ENTITY_TYPES, optional=False))
    site_id: str | None = None
    app: str | None = None
    status: str | None = attrs.field(default=None, validator=_check(STATUS_RANK))
    business_key: str | None = None
    sub_key: str | None = None
    parent_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    sort: str = attrs.field(default="-start_time", validator=_check(ENTITY_SORTS, optional=False))
    limit: int = attrs.field(default=100, validator=_entity_limit)
    cursor: str | None = None


@attrs.frozen
class EntityPage:
    items: list[EntityState]
    next_cursor: str | None = None


@attrs.frozen
class JobDetail:
    """A job, its subjobs and its own events (oldest first, at most the limit asked for)."""

    job: EntityState
    subjobs: list[EntityState]
    events: list[Event]


class ManagedStore(Emitter, QueryAdapter):
    """A store a gateway can own: idempotent ingest plus current job and subjob state."""

    @abc.abstractmethod
    async def ingest(
        self, events: Sequence[Event], *, bodies: Sequence[bytes | None] | None = None
    ) -> list[bool]:
        """Store events; for each, True if new, False if its event_id was already stored.

        ``bodies``, when given, holds for each event the JSON text it was decoded from (None
        where unknown, e.g. an event a transform replaced): a store that keeps the wire JSON
        stores it as it is instead of encoding the event again; any other store ignores it.
        """

    async def ingest_wire(self, events: Sequence[WireEvent], lines: Sequence[bytes]) -> list[bool]:
        """``ingest`` for events that passed the fast decoder, with the JSON text of each.

        The gateway stores through here, so a store that can take its columns from the wire
        events (the SQL store does) never builds an ``Event`` per event. This default builds
        them and calls ``ingest``, so every store takes the call.
        """
        return await self.ingest([w.to_event() for w in events], bodies=lines)

    async def emit(self, batch: Sequence[Event]) -> None:
        await self.ingest(batch)

    @abc.abstractmethod
    async def entities(self, query: EntityQuery) -> EntityPage:
        """One page of jobs or subjobs; a cursor it did not issue raises
        ``FieldValueError("cursor", ...)`` (the gateway answers 400 naming the parameter)."""

    @abc.abstractmethod
    async def job_detail(self, entity_id: str, *, events_limit: int = 1000) -> JobDetail | None:
        """A job or subjob by id with its subjobs and events; None if unknown."""

    @abc.abstractmethod
    async def enforce_retention(self) -> int:
        """Drop events older than the store's hot window; returns how many were removed."""
