"""The batch-ingest rules, in one place for every entry point that takes a body of events.

The sidecar's and gateway's ingest routes and ``wafermon emit`` read a body with the fast
reader (``wafermon.wire``), then apply the same rules here: a rejected item is reported with
its index, id and the field at fault; with ``dedupe`` only the first copy of an ``event_id``
goes on and later copies are ``duplicate``; the ``transform_events`` plugins run over what is
left, and an event they drop is reported ``rejected`` with ``DROPPED``. The caller then hands
``Admitted.events``/``lines`` to its spool, store or emitters, and adds its own verdicts (the
store's duplicates) to ``Admitted.results``.

No Event object is built unless the caller asks for them or a plugin transforms events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import attrs

from .batch import EventBatch
from .codec import encode_event
from .errors import Problem
from .events import Event
from .wire import WireBatch, WireEvent

if TYPE_CHECKING:
    from .plugins import Plugins

#: The problem of an event a transform_events plugin dropped.
DROPPED = "dropped by a transform_events plugin"


@attrs.frozen
class Verdict:
    """An event that was not accepted: its 0-based position in the body, id, status
    (``rejected`` or ``duplicate``) and, for a rejected one, what is wrong where."""

    index: int
    event_id: str | None
    status: str
    problems: list[Problem] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        """The entry of an ingest answer's ``results`` (sidecar and gateway answer alike)."""
        return {
            "index": self.index,
            "event_id": self.event_id,
            "status": self.status,
            "errors": [{"path": p.path, "message": p.message} for p in self.problems],
        }

    def __str__(self) -> str:
        said = "; ".join(str(p) for p in self.problems) or f"a copy of an earlier {self.event_id}"
        return f"event {self.index}: {said}"


def verdict(index: int, event_id: Any, status: str, problems: Iterable[Problem] = ()) -> Verdict:
    return Verdict(index, None if event_id is None else str(event_id), status, list(problems))


@attrs.frozen
class Admitted:
    """What goes on from a batch after the rules.

    ``events`` is None when the caller did not ask for Event objects and no plugin transforms
    (then ``wire`` holds the decoded events). ``lines[k]`` is the JSON text ``events[k]``
    arrived as, None where a plugin replaced the event; ``indexes[k]`` is the position of
    ``wire[k]`` in the body. ``results`` are the verdicts so far, in input order.
    """

    events: list[Event] | None
    wire: list[WireEvent]
    #: The texts, or the batch they are the lines of when the rules left it as it was: a
    #: caller that spools the batch's NDJSON whole never has it cut into lines.
    _texts: list[bytes | None] | WireBatch
    indexes: list[int]
    results: list[Verdict]

    @property
    def index_of(self) -> dict[str, int]:
        """Each event_id's position in the body (an event a plugin added has none); built on
        demand, as most batches never need it."""
        return dict(zip((w.event_id for w in self.wire), self.indexes, strict=True))

    @property
    def lines(self) -> list[bytes | None]:
        texts = self._texts
        return cast("list[bytes | None]", texts.lines) if isinstance(texts, WireBatch) else texts

    @property
    def count(self) -> int:
        texts = self._texts
        return texts.count if isinstance(texts, WireBatch) else len(texts)

    def batch(self) -> EventBatch:
        """What goes on, for a spool or emitters: each event as the text it arrived in (encoded
        anew only where a plugin replaced it), with what is already decoded."""
        if self.events is None:
            texts = self._texts
            if isinstance(texts, WireBatch):
                ndjson = texts.ndjson()
            else:  # no plugin ran: every event has its text
                ndjson = b"".join(cast(bytes, line) + b"\n" for line in texts)
            # A batch read without keeping its events hands on text only: decoded on demand.
            kept = not isinstance(texts, WireBatch) or texts.keeps_events
            return EventBatch(ndjson=ndjson, count=self.count, wire=self.wire if kept else None)
        lines = [line or encode_event(e) for e, line in zip(self.events, self.lines, strict=True)]
        return EventBatch(ndjson=b"".join(line + b"\n" for line in lines), events=self.events)


def admit(
    batch: WireBatch,
    plugins: Plugins,
    *,
    host: str,
    site_id: str,
    dedupe: bool,
    objects: bool = False,
) -> Admitted:
    """Apply the ingest rules to a decoded batch (see the module's docstring).

    ``batch`` may be read without keeping its events (``keep_events=False``) only when no rule
    needs them: no ``dedupe``, no ``objects``, no ``transform_events`` plugin.
    """
    if not batch.keeps_events and (dedupe or objects or plugins.transforms_events):
        raise ValueError("these ingest rules need the decoded events: read with keep_events")
    results = [verdict(r.index, r.event_id, "rejected", r.problems) for r in batch.rejected]
    wire, indexes = batch.events, batch.indexes
    lines: list[bytes | None] | WireBatch = batch
    if dedupe:
        first: dict[str, int] = {}
        keep = []
        for k, (index, item) in enumerate(zip(indexes, wire, strict=True)):
            if item.event_id in first:
                results.append(verdict(index, item.event_id, "duplicate"))
            else:
                first[item.event_id] = index
                keep.append(k)
        if len(keep) < len(wire):
            wire, lines = [wire[k] for k in keep], [batch.lines[k] for k in keep]
            indexes = [indexes[k] for k in keep]
    events = [w.to_event() for w in wire] if objects or plugins.transforms_events else None
    if events is not None and plugins.transforms_events:
        decoded = events
        texts = batch.lines if isinstance(lines, WireBatch) else lines
        received = [line or b"" for line in texts]  # every line is set before a transform
        out = plugins.transform_lines(decoded, received, host=host, site_id=site_id)
        results += [
            verdict(indexes[i], decoded[i].event_id, "rejected", [Problem("$", DROPPED)])
            for i in out.dropped
        ]
        events, lines = out.events, out.lines
        if dedupe:  # a plugin may hand on two events with one id: the first goes on
            first_at: dict[Any, int] = {}
            for k, kept in enumerate(events):
                first_at.setdefault(kept.event_id, k)
            if len(first_at) < len(events):
                events = [events[k] for k in first_at.values()]
                lines = [lines[k] for k in first_at.values()]
    results.sort(key=lambda v: v.index)
    return Admitted(events, wire, lines, indexes, results)
