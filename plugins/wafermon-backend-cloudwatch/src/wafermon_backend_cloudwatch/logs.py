"""PutLogEvents batching: pure functions that keep every call within the service's limits.

The limits (AWS API reference, PutLogEvents): at most 10,000 events and 1,048,576 bytes per
call, where each event counts its message's UTF-8 bytes plus 26; one event at most 256 KB
(counted the same way here, to stay on the safe side); events in chronological order; one call
spanning at most 24 hours; no event older than 14 days or more than 2 hours in the future.
moto enforces almost none of these, so they are checked here and unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from uuid import UUID

import attrs

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 262_144
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_AGE_MS = 14 * 24 * 3600 * 1000
MAX_AHEAD_MS = 2 * 3600 * 1000
#: Kept off the exact edges: a batch may take a while to reach AWS.
EDGE_MARGIN_MS = 5 * 60 * 1000


@attrs.frozen
class LogItem:
    timestamp: int  # ms since the epoch
    message: str
    size: int  # UTF-8 bytes of message + EVENT_OVERHEAD
    event_id: UUID


def item(timestamp_ms: int, message: bytes, event_id: UUID) -> LogItem:
    return LogItem(timestamp_ms, message.decode(), len(message) + EVENT_OVERHEAD, event_id)


def refusal(entry: LogItem, now_ms: int) -> str | None:
    """Why CloudWatch Logs would refuse this event for good, or None."""
    if entry.size > MAX_EVENT_BYTES:
        return f"{entry.size} bytes as a log event, above CloudWatch's {MAX_EVENT_BYTES}"
    if entry.timestamp < now_ms - MAX_AGE_MS + EDGE_MARGIN_MS:
        return "older than the 14 days CloudWatch Logs accepts"
    if entry.timestamp > now_ms + MAX_AHEAD_MS - EDGE_MARGIN_MS:
        return "more than 2 hours in the future for CloudWatch Logs"
    return None


def batches(items: Sequence[LogItem]) -> Iterator[list[LogItem]]:
    """``items`` in time order, cut into calls within the count, byte and 24 h limits."""
    current: list[LogItem] = []
    size = 0
    for entry in sorted(items, key=lambda i: i.timestamp):  # stable: ties keep their order
        if current and (
            len(current) == MAX_BATCH_EVENTS
            or size + entry.size > MAX_BATCH_BYTES
            or entry.timestamp - current[0].timestamp > MAX_SPAN_MS - 1
        ):
            yield current
            current, size = [], 0
        current.append(entry)
        size += entry.size
    if current:
        yield current
