"""ZabbixQueryAdapter: reads events back from the ``wafermon.event[<app>]`` text items.

The events are the exact JSON the emitter sent (so event_id, and the gateway's de-duplication,
survive the trip); ``history.get`` narrows by host (site), item (app) and whole seconds of
time, every other filter is applied here with ``Query.matches``. Rows come in clock order a
page at a time and are cut only at a second's boundary, so the (time, event_id) order and the
cursor hold although Zabbix cannot sort by ns. ``trends`` gives the hourly min/avg/max of the
numeric items (``trend.get``), which have no event form.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import attrs

from wafermon import EventDecodeError, Query, QueryAdapter, QueryResult, decode_event, encode_cursor

from .api import ApiSettings, ZabbixApi
from .keys import EVENT_ITEM, ITEMS, host_name, key

log = logging.getLogger(__name__)
TEXT_HISTORY = 4


@attrs.frozen(kw_only=True)
class AdapterSettings:
    """``config:`` of a ``type: zabbix`` source."""

    api: ApiSettings
    host_prefix: str = "wafermon-"
    page_rows: int = 2000  # history rows per history.get call


class ZabbixQueryAdapter(QueryAdapter):
    Settings = AdapterSettings
    settings: AdapterSettings

    def __init__(self, name: str, settings: AdapterSettings) -> None:
        super().__init__(name, settings)
        self._api = ZabbixApi(settings.api)

    async def close(self) -> None:
        await self._api.close()

    async def _items(self, site_id: str | None, base: str, app: str | None) -> list[str]:
        prefix = self.settings.host_prefix
        if site_id is not None:
            hosts = await self._api.call(
                "host.get", filter={"host": [host_name(prefix, site_id)]}, output=["hostid"]
            )
        else:
            hosts = await self._api.call(
                "host.get", search={"host": prefix}, startSearch=True, output=["hostid"]
            )
        if not hosts:
            return []
        hostids = [h["hostid"] for h in hosts]
        if app is not None:
            where = {"filter": {"key_": [key(base, app)]}}
        else:
            where = {"search": {"key_": base + "["}, "startSearch": True}
        items = await self._api.call("item.get", hostids=hostids, output=["itemid"], **where)
        return [i["itemid"] for i in items]

    async def query(self, query: Query) -> QueryResult:
        itemids = await self._items(query.site_id, EVENT_ITEM, query.app)
        if not itemids:
            return QueryResult([])
        after = query.after_cursor()
        starts = [t for t in (query.start, after[0] if after else None) if t is not None]
        time_from = int(max(starts).timestamp()) if starts else 0
        time_till = math.ceil(query.end.timestamp()) if query.end is not None else None
        found = []
        while True:
            params = {
                "history": TEXT_HISTORY,
                "itemids": itemids,
                "time_from": time_from,
                "sortfield": "clock",
                "sortorder": "ASC",
                "limit": self.settings.page_rows,
                "output": ["clock", "value"],
            }
            if time_till is not None:
                params["time_till"] = time_till
            rows = await self._api.call("history.get", **params)
            full = len(rows) == self.settings.page_rows
            if full:
                last = int(rows[-1]["clock"])
                if int(rows[0]["clock"]) == last:  # one second holds a whole page: all of it
                    rows = await self._api.call(
                        "history.get", **{**params, "time_till": last, "limit": None}
                    )
                    time_from = last + 1
                else:  # keep whole seconds only; the last one is read again from its start
                    rows = [r for r in rows if int(r["clock"]) < last]
                    time_from = last
            found.extend(self._matching(rows, query, after))
            found.sort(key=lambda e: e.sort_key)
            if len(found) > query.limit or not full:
                break
        events = found[: query.limit]
        more = len(found) > query.limit
        return QueryResult(events, encode_cursor(events[-1]) if more else None)

    def _matching(self, rows: list[dict], query: Query, after):
        for row in rows:
            try:
                event = decode_event(row["value"])
            except EventDecodeError as exc:  # not written by wafermon, or cut by Zabbix
                log.warning("%s: skipped a value that is not an event: %s", self.name, exc)
                continue
            if query.matches(event) and (after is None or event.sort_key > after):
                yield event

    async def trends(
        self, site_id: str, app: str, metric: str, start: datetime, end: datetime
    ) -> list[dict]:
        """Hourly figures of one numeric item (``duration``, ``cpu``, ``mem``, ``status``):
        ``{"hour", "count", "min", "avg", "max"}``, from ``trend.get``."""
        base = f"wafermon.{metric}"
        if base not in ITEMS or base == EVENT_ITEM:
            raise ValueError(f"metric: one of duration, cpu, mem, status, got {metric!r}")
        itemids = await self._items(site_id, base, app)
        if not itemids:
            return []
        rows = await self._api.call(
            "trend.get",
            itemids=itemids,
            time_from=int(start.timestamp()),
            time_till=math.ceil(end.timestamp()),
            output=["clock", "num", "value_min", "value_avg", "value_max"],
        )
        return [
            {
                "hour": datetime.fromtimestamp(int(r["clock"]), UTC),
                "count": int(r["num"]),
                "min": float(r["value_min"]),
                "avg": float(r["value_avg"]),
                "max": float(r["value_max"]),
            }
            for r in sorted(rows, key=lambda r: int(r["clock"]))
        ]
