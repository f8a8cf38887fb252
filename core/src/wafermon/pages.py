"""Keyset cursors and merged pages: one implementation for every store, source and host.

A cursor is opaque to clients: the values of the sort key it continues after, as JSON in
URL-safe base64. Stores, the gateway's unified view and central all page this way, and all
merge the pages of several sources the same way: de-duplicated by identity, the first
``limit`` in key order, and whether more may follow.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import orjson

from .errors import FieldValueError

T = TypeVar("T")


def pack_cursor(*values: Any) -> str:
    """An opaque cursor holding ``values`` (JSON-able; datetimes in UTC)."""
    raw = orjson.dumps(list(values), option=orjson.OPT_UTC_Z)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack_cursor(cursor: str) -> list[Any]:
    """The values of a cursor ``pack_cursor`` made; FieldValueError('cursor') if it is not one."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise FieldValueError("cursor", f"not a cursor this service issued ({exc})") from None
    if not isinstance(values, list):
        raise FieldValueError("cursor", "not a cursor this service issued")
    return values


def key_cursor(time: datetime, event_id: UUID | str) -> str:
    """The event cursor pointing just after the event with this sort key."""
    return pack_cursor(time, str(event_id))


def encode_cursor(event: Any) -> str:
    """An opaque keyset cursor pointing just after ``event`` (anything with time, event_id)."""
    return key_cursor(event.time, event.event_id)


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Inverse of encode_cursor; a malformed cursor raises FieldValueError('cursor', ...)."""
    try:
        time_text, event_id = unpack_cursor(cursor)
        return datetime.fromisoformat(time_text), UUID(event_id)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, FieldValueError):
            raise
        raise FieldValueError("cursor", f"not a cursor this service issued ({exc})") from None


def merge_pages(
    pages: Iterable[tuple[Iterable[T], bool]],
    limit: int,
    *,
    key: Callable[[T], Any],
    identity: Callable[[T], Hashable],
) -> tuple[list[T], bool]:
    """The first ``limit`` items of several sorted pages, each identity once (the first page's
    copy wins), and whether more may follow. ``pages`` yields (items, that source has more)."""
    merged: dict[Hashable, T] = {}
    more = False
    for items, has_more in pages:
        more = more or has_more
        for item in items:
            merged.setdefault(identity(item), item)
    ordered = heapq.nsmallest(limit + 1, merged.values(), key=key)
    return ordered[:limit], more or len(ordered) > limit
