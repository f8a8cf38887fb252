"""Merging pages from several sites into one page, and the composite cursor that continues it.

**Jobs and subjobs.** Each gateway returns its entities in ``(sort value, entity_id)`` order
and hands out cursors central cannot forge (their format belongs to the store). So the
composite cursor keeps, for each site, where that site's list stands:

- ``c``: the gateway cursor of the page central last asked for (null: the start of the list),
- ``k``: how many items of that page central has already returned,
- ``last``: the sort key ``[value, entity_id]`` of the last item returned from that site,

or ``"done"`` once a site has nothing more. To fill a page of ``limit`` items central asks each
site for ``k + limit`` items from ``c``, keeps those strictly after ``last`` (so an item is
never repeated, even if the site's list shifted), merges all sites' candidates by
``(value, entity_id, site)`` and takes the first ``limit``. A site whose candidates were all
taken moves on to its gateway's ``next_cursor`` (``k`` back to 0); one that contributed part of
its candidates keeps ``c`` and advances ``k`` and ``last``. If ``k + limit`` would pass the
gateway's page limit, central first asks for ``k`` items to get a cursor just after them.
Nothing past the last item a site sent is returned while that site has more (jobs arriving
between pages could sit there), so such a page may be shorter than ``limit``: only a null
``next_cursor`` means the end.

A site that is missing from a page (failed, timed out) keeps its position, so a later page
picks it up where it stood. The composite cursor is null when no site that answered has more.

**Events** (``/v1/data/unified``). Every gateway understands the core's event cursor (the sort
key ``(time, event_id)`` of the last event), so one cursor serves every site: central asks all
sites for ``limit`` events after it, merges by ``(time, event_id)``, keeps one copy per
``event_id`` and returns the first ``limit``, exactly as a gateway merges its own sources.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

from wafermon import merge_pages
from wafermon.errors import FieldValueError
from wafermon.pages import key_cursor, pack_cursor, unpack_cursor
from wafermon.store import MAX_ENTITY_LIMIT

from ..common.errors import bad_parameter

DONE = "done"
CURSOR_VERSION = 1


@attrs.frozen
class SiteState:
    cursor: str | None = None  # the gateway cursor of the page being read (None: the start)
    skip: int = 0  # items of that page already returned
    last: tuple[str, str] | None = None  # [value, entity_id] of the last item returned

    def to_json(self) -> dict[str, Any]:
        return {"c": self.cursor, "k": self.skip, "last": list(self.last) if self.last else None}


State = SiteState | str  # or DONE


def encode_composite(sort: str, states: dict[str, State]) -> str:
    sites = {n: s if isinstance(s, str) else s.to_json() for n, s in states.items()}
    return pack_cursor(CURSOR_VERSION, sort, sites)


def decode_composite(cursor: str, sort: str, sites: Sequence[str]) -> dict[str, State]:
    """The per-site states of a composite cursor; 400 naming ``cursor`` if it does not fit."""
    try:
        version, cursor_sort, site_states = unpack_cursor(cursor)
        if version != CURSOR_VERSION:
            raise ValueError("unknown cursor version")
        states: dict[str, State] = {}
        for name, value in site_states.items():
            if value == DONE:
                states[name] = DONE
                continue
            c, k, last = value["c"], value["k"], value["last"]
            if not (c is None or isinstance(c, str)) or type(k) is not int or k < 0:
                raise ValueError("bad site state")
            if last is not None and not (
                isinstance(last, list) and len(last) == 2 and all(isinstance(x, str) for x in last)
            ):
                raise ValueError("bad site state")
            states[name] = SiteState(c, k, tuple(last) if last else None)
    except FieldValueError as exc:
        raise bad_parameter("cursor", exc.message) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise bad_parameter("cursor", f"not a cursor this central host issued ({exc})") from None
    if cursor_sort != sort:
        raise bad_parameter("cursor", f"issued for sort {cursor_sort!r}, not {sort!r}")
    if sorted(states) != sorted(sites):
        raise bad_parameter(
            "cursor", f"issued for sites {', '.join(sorted(states))}, not {', '.join(sites)}"
        )
    return states


# -- entity lists -------------------------------------------------------------------------------


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class EntityOrder:
    """The order of a jobs/subjobs list: ``-start_time``, ``updated_at`` ..."""

    def __init__(self, sort: str) -> None:
        self.sort = sort
        self.field = sort.lstrip("-")
        self.descending = sort.startswith("-")

    def site_key(self, item: dict[str, Any]) -> tuple[datetime, str]:
        return _time(item[self.field]), item["entity_id"]

    def raw_key(self, item: dict[str, Any]) -> tuple[str, str]:
        return item[self.field], item["entity_id"]

    def after(self, item: dict[str, Any], last: tuple[str, str] | None) -> bool:
        """Whether ``item`` comes strictly after ``last`` in this order."""
        if last is None:
            return True
        key, bound = self.site_key(item), (_time(last[0]), last[1])
        return key < bound if self.descending else key > bound


@attrs.frozen
class SiteFetch:
    """What to ask one site for: ``limit`` items from ``cursor``."""

    cursor: str | None
    limit: int


def plan(state: SiteState, limit: int) -> tuple[SiteFetch | None, SiteFetch]:
    """(rebase fetch or None, page fetch) for a site in ``state``.

    The rebase fetch asks for ``skip`` items only, to get a gateway cursor just after them,
    when ``skip + limit`` would pass the gateway's page limit.
    """
    if state.skip + limit <= MAX_ENTITY_LIMIT:
        return None, SiteFetch(state.cursor, state.skip + limit)
    return SiteFetch(state.cursor, state.skip), SiteFetch(None, limit)


def merge_entities(
    order: EntityOrder,
    limit: int,
    pages: dict[str, tuple[SiteState, dict[str, Any]]],
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, State]]:
    """Merge sites' pages into one page of ``limit`` (site, item) and each site's new state.

    ``pages`` maps each site that answered to (the state its page was read from, the page).
    """
    candidates: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for site, (state, page) in pages.items():
        items = page.get("items") or []
        candidates[site] = [
            (i, item) for i, item in enumerate(items) if order.after(item, state.last)
        ]

    def merge_key(entry: tuple[str, int, dict[str, Any]]) -> tuple[datetime, str, str]:
        site, _i, item = entry
        value, entity_id = order.site_key(item)
        return value, entity_id, site

    everything = [(site, i, item) for site, found in candidates.items() for i, item in found]
    picked = (heapq.nlargest if order.descending else heapq.nsmallest)(
        limit, everything, key=merge_key
    )
    # A site with more items than it sent may hold items just after its last one; nothing
    # beyond that point may be returned before they are seen. (Without concurrent inserts every
    # site offers at least ``limit`` candidates, so this only shortens a page that raced them.)
    bounds = [
        page["items"][-1]
        for _state, page in pages.values()
        if page.get("next_cursor") is not None and page.get("items")
    ]
    if bounds:
        picked = list(
            itertools.takewhile(
                lambda e: not any(order.after(e[2], order.raw_key(b)) for b in bounds), picked
            )
        )
    taken: dict[str, list[tuple[int, dict[str, Any]]]] = {site: [] for site in pages}
    for site, i, item in picked:
        taken[site].append((i, item))

    states: dict[str, State] = {}
    for site, (state, page) in pages.items():
        used = taken[site]
        last_index, last = -1, state.last
        if used:
            last_index, last_item = max(used, key=lambda e: e[0])
            last = order.raw_key(last_item)
        if len(used) == len(candidates[site]):  # everything it offered was returned
            next_cursor = page.get("next_cursor")
            states[site] = DONE if next_cursor is None else SiteState(next_cursor, 0, last)
        elif used:
            states[site] = SiteState(state.cursor, last_index + 1, last)
        else:
            states[site] = state
    return [(site, item) for site, _i, item in picked], states


# -- events -------------------------------------------------------------------------------------


def event_key(event: dict[str, Any]) -> tuple[datetime, UUID]:
    return _time(event["time"]), UUID(event["event_id"])


def event_cursor(event: dict[str, Any]) -> str:
    """The core's event cursor for an event in wire form (what every gateway accepts)."""
    return key_cursor(*event_key(event))


def merge_events(pages: Iterable[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], bool]:
    """(first ``limit`` events of all pages merged, whether more may follow)."""
    return merge_pages(
        ((page.get("events") or [], page.get("next_cursor") is not None) for page in pages),
        limit,
        key=event_key,
        identity=lambda event: event["event_id"],
    )
