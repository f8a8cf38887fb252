"""Valid events for tests: one factory instead of a ``make_event`` in every conftest.

``make_event()`` builds an ``Event`` that passes validation with every field defaulted; any
field can be named. Successive events from one ``EventFactory`` are one second apart, so a
list of them is already in ``Event.sort_key`` order. ``ndjson_batch`` builds many events as
NDJSON bytes without Event objects, for load tests and for posting to a real sidecar.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..events import App, Entity, ErrorInfo, Event, Metrics, Source


class EventFactory:
    """Makes valid events: ``factory(kind="failed", entity_id="lot-7", site_id="fab2")``.

    ``t0`` is where the clock starts (default: two hours ago, whole seconds, so the events fall
    in a managed store's hot window and in real PostgreSQL partitions); each event without a
    ``time`` is ``step`` after the previous one. A ``failed`` event gets an ``ErrorInfo``, a
    ``subjob`` a ``parent_id`` ("j0") unless given.
    """

    def __init__(self, t0: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> None:
        self.t0 = t0 or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        self.step = step
        self._seq = itertools.count(1)

    def __call__(
        self,
        *,
        time: datetime | None = None,
        site_id: str = "fab1",
        app: str = "etch",
        app_version: str | None = None,
        kind: str = "started",
        entity_type: str = "job",
        entity_id: str | None = None,
        parent_id: str | None = None,
        business_key: str | None = None,
        sub_key: str | None = None,
        metrics: Metrics | None = None,
        metadata: dict[str, Any] | None = None,
        error: ErrorInfo | None = None,
        source: Source | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Event:
        n = next(self._seq)
        if entity_type == "subjob" and parent_id is None:
            parent_id = "j0"
        if kind == "failed" and error is None:
            error = ErrorInfo(type="Boom", message="it broke")
        return Event(
            event_id=event_id or uuid.uuid4(),
            kind=kind,
            time=time or self.t0 + n * self.step,
            site_id=site_id,
            app=App(name=app, version=app_version),
            entity=Entity(
                type=entity_type,
                id=entity_id or f"j{n}",
                parent_id=parent_id,
                business_key=business_key,
                sub_key=sub_key,
            ),
            metrics=metrics or Metrics(),
            metadata=metadata or {},
            error=error,
            source=source or Source(),
        )

    def many(self, count: int, **fields: Any) -> list[Event]:
        """``count`` events in time order, kinds cycling started/progress/finished/failed
        unless ``kind`` is given."""
        kinds = itertools.cycle(("started", "progress", "finished", "failed"))
        return [self(**{"kind": next(kinds), **fields}) for _ in range(count)]


#: A module-level factory for quick use: ``make_event(kind="finished")``.
make_event = EventFactory()


def ndjson_batch(
    count: int,
    *,
    prefix: str = "job",
    metadata: dict[str, Any] | None = None,
    entity_id: str | None = None,
    site_id: str = "fab1",
    jobs: int = 1,
) -> bytes:
    """``count`` valid events as NDJSON, each with a fresh event_id, about 600 bytes each.

    Built from a template with orjson (no Event objects), so 100,000 events take a second.
    Times are within the last minutes, inside the managed store's hot window. The events are
    subjobs of ``jobs`` jobs (``<prefix>-lot``, or ``<prefix>-lot<n>`` when more than one), in
    turn: many jobs spread over a stream's partitions, whose key is the job.
    """
    now = datetime.now(UTC) - timedelta(minutes=5)
    lines = []
    for i in range(count):
        event_id = str(uuid.uuid4())
        event = {
            "schema_version": 1,
            "event_id": event_id,
            "kind": "progress",
            "time": (now + timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "site_id": site_id,
            "app": {"name": "wafer-process", "version": "2.1.0"},
            "entity": {
                "type": "subjob",
                "id": entity_id or f"{prefix}-{event_id[:18]}",
                "parent_id": f"{prefix}-lot{i % jobs}" if jobs > 1 else f"{prefix}-lot",
                "business_key": "LOT-12345",
                "sub_key": f"wafer-{i % 25:02d}",
            },
            "metrics": {
                "duration_s": 1.5,
                "cpu_user_s": 1.2,
                "cpu_system_s": 0.1,
                "mem_max_mb": 120.5,
                "progress": (i % 100) / 100,
            },
            "metadata": metadata or {"tool": "etch-07", "recipe": "POLY-ETCH-3"},
            "source": {"host": "node-17", "pid": 4242, "sdk": "python", "sdk_version": "0.1.0"},
        }
        lines.append(orjson.dumps(event))
    return b"\n".join(lines) + b"\n"


def event_ids(ndjson: bytes) -> list[str]:
    """The event_id of every line of an NDJSON body, in order."""
    return [orjson.loads(line)["event_id"] for line in ndjson.splitlines() if line.strip()]


def ids(events: Iterable[Event]) -> list[str]:
    """The event_ids of events as strings, in order (what most backends store them as)."""
    return [str(e.event_id) for e in events]
