"""A small real trend source for the gateway and central trend tests (importable from tests).

Its figures are made from the query, so every answer can be checked: one point per period
valued by its index, plus one point after ``end`` the hosts must drop. Registered like a
plugin's component (``TrendPlugin``, type ``counting``).
"""

from __future__ import annotations

from datetime import timedelta

from wafermon import QueryResult, TrendSeries, TrendSource, hookimpl
from wafermon.interfaces import QueryAdapter


class CountingSource(QueryAdapter, TrendSource):
    """One point per period valued by its index; one out-of-range point the gateway must drop.

    ``by_app`` answers two apps, the app ``boom`` fails like an unreachable service."""

    async def query(self, query):
        return QueryResult([])

    def trend_metrics(self):
        return {"JobsFailed": "Count", "JobDuration": "Seconds"}

    async def trends(self, query):
        if query.app == "boom":
            raise ConnectionRefusedError("metrics.example:443 refused the connection")
        step = timedelta(seconds=query.period)
        count = int((query.end - query.start) / step)
        points = [(query.start + n * step, float(n)) for n in range(count)]
        points.append((query.end + step, 99.0))  # outside the range: must not be shown
        if query.by_app:
            return [TrendSeries(a, a, points[::-1]) for a in ("etch", "litho")]
        return [TrendSeries(query.app or query.site_id, query.app, points[::-1])]


class TrendPlugin:
    @hookimpl
    def register_query_adapters(self, register):
        register("counting", CountingSource)
