"""EventBatch: what ``Emitter.emit`` receives, a ``Sequence[Event]`` that is also its bytes.

The sidecar spools the NDJSON it validated on the way in; a backend that stores or forwards
JSON (the gateway forwarder, files, object stores) writes those bytes with ``ndjson_of(batch)``
and never builds an Event. A backend that wants objects indexes or iterates the batch as it
always did: the events are then decoded once, on first use, and shared by every backend that
reads the same records. Third-party emitters written against ``Sequence[Event]`` keep working.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from .codec import encode_ndjson
from .events import Event


class EventBatch(Sequence[Event]):
    """Events as NDJSON bytes (one validated event per line) and, once asked for, as objects.

    Build one from bytes that passed validation (``from_ndjson``: the sidecar's spool holds only
    such bytes) or from events (``from_events``); ``concat`` joins batches without decoding.
    """

    __slots__ = ("_count", "_events", "_ndjson", "_parts", "_wire")

    def __init__(
        self,
        *,
        ndjson: bytes | None = None,
        events: list[Event] | None = None,
        count: int | None = None,
        parts: Sequence[EventBatch] = (),
        wire: Sequence[Any] | None = None,
    ) -> None:
        """``wire``: the ``wafermon.wire.WireEvent`` of each line, when the caller has them."""
        self._ndjson = ndjson
        self._events = events
        self._parts = tuple(parts)
        self._wire = wire
        if count is None:
            if events is not None:
                count = len(events)
            elif parts:
                count = sum(len(p) for p in parts)
            else:
                count = (ndjson or b"").count(b"\n")
        self._count = count

    @classmethod
    def from_ndjson(cls, ndjson: bytes, count: int | None = None) -> EventBatch:
        """Validated NDJSON, every line (newline-terminated) one event."""
        return cls(ndjson=ndjson, count=count)

    @classmethod
    def from_events(cls, events: Sequence[Event]) -> EventBatch:
        return events if isinstance(events, EventBatch) else cls(events=list(events))

    @classmethod
    def concat(cls, batches: Sequence[EventBatch]) -> EventBatch:
        """One batch of several, in order; each part keeps (and shares) its decoded events."""
        if len(batches) == 1:
            return batches[0]
        return cls(parts=batches)

    @property
    def ndjson(self) -> bytes:
        """The events as NDJSON, a newline after each: the bytes received, where known."""
        if self._ndjson is None:
            if self._parts:
                self._ndjson = b"".join(p.ndjson for p in self._parts)
            else:
                self._ndjson = encode_ndjson(self._events or [])
        return self._ndjson

    def to_keep(self) -> EventBatch:
        """This batch as worth keeping for later: with its Event objects if they are built,
        else its bytes alone.

        The wire structs of a freshly read body are cheap to free at once and dear to keep: a
        sidecar taking batches spent 17% of its CPU freeing them, cache-cold, when a cache of
        recent records let them go, against 9% freeing them right away. A backend that wants
        objects decodes the bytes again, once per record, shared with the other backends.
        """
        if self._wire is None or self._parts:
            return self
        return EventBatch(ndjson=self.ndjson, count=self._count)

    @property
    def decoded(self) -> bool:
        """Whether the events have been built as objects (a test and metrics aid)."""
        if self._parts:
            return all(p.decoded for p in self._parts)
        return self._events is not None

    def events(self) -> list[Event]:
        if self._events is None:
            if self._parts:
                self._events = [e for p in self._parts for e in p.events()]
            elif self._wire is not None:
                self._events = [w.to_event() for w in self._wire]
                self._wire = None
            else:
                from .wire import read_batch  # wire imports codec; codec must not import wire

                self._events = [w.to_event() for w in read_batch(self.ndjson).events]
        return self._events

    def split(self) -> tuple[EventBatch, EventBatch]:
        """Two halves, cut between lines (for a receiver that refuses the whole as too large)."""
        if self._ndjson is None and self._events is not None:
            half = len(self._events) // 2
            return EventBatch(events=self._events[:half]), EventBatch(events=self._events[half:])
        lines = self.ndjson.splitlines(keepends=True)
        half = len(lines) // 2
        return (
            EventBatch(ndjson=b"".join(lines[:half]), count=half),
            EventBatch(ndjson=b"".join(lines[half:]), count=len(lines) - half),
        )

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        return self.events()[index]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<EventBatch of {self._count} events>"


def ndjson_of(batch: Sequence[Event]) -> bytes:
    """A batch's events as NDJSON bytes, without decoding an EventBatch that holds them."""
    if isinstance(batch, EventBatch):
        return batch.ndjson
    return encode_ndjson(batch)
