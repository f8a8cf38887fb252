"""CloudWatchQueryAdapter: reads the log lines the emitter wrote back as unified events, and
metric trends through GetMetricData (a core TrendSource, read by the gateway's /v1/trends).

FilterLogEvents gets the time range (and the app's stream when the stream template names only
``{app}``) and a JSON filter pattern built from the query, so AWS sends less; but every event
that comes back is decoded and checked with ``Query.matches`` here, because the service is free
to send more (moto ignores JSON filter patterns entirely) and because only this check is the
query's meaning. FilterLogEvents does not return events in one global time order, so a query
reads its whole range (bounded by ``max_scan_events``) keeping only the smallest ``limit + 1``
sort keys: bounded memory, exact keyset pages.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
import string
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs
from botocore.exceptions import BotoCoreError, ClientError

import wafermon
from wafermon import (
    Event,
    EventDecodeError,
    FieldValueError,
    Health,
    Query,
    QueryAdapter,
    QueryResult,
    TrendQuery,
    TrendSeries,
    TrendSource,
    WafermonError,
)
from wafermon.interfaces import MAX_TREND_POINTS, MAX_TREND_SERIES, STATUSES

from . import metrics
from .aws import (
    AwsSettings,
    Clients,
    delivery_error,
    error_code,
    log_group_name,
    log_stream_name,
    logs_health,
)

log = logging.getLogger(__name__)
#: Values pushed down into a filter pattern; anything else is filtered here only.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9 ._:/@+=,-]{1,256}")
#: Keep this many candidates before trimming to the page (bounds memory, amortises the trim).
_TRIM_FACTOR = 4


#: TrendQuery's statistics -> CloudWatch's.
_STATS = {"sum": "Sum", "avg": "Average", "min": "Minimum", "max": "Maximum",
          "count": "SampleCount"}  # fmt: skip


class QueryTooBroad(WafermonError):
    """A query would scan more log events than ``max_scan_events``; narrow its time range."""


@attrs.frozen(kw_only=True)
class CloudWatchSourceSettings(AwsSettings):
    """``config:`` of a ``type: cloudwatch`` source."""

    max_scan_events: int = 200_000


def filter_pattern(query: Query) -> str | None:
    """A CloudWatch Logs JSON filter pattern for the query's exact-match fields, or None.

    Only values of plain characters are pushed down (quoting rules for the rest are not worth
    the risk); the adapter checks every returned event itself anyway.
    """
    terms = []
    for path, value in (
        ("$.site_id", query.site_id),
        ("$.app.name", query.app),
        ("$.entity.type", query.entity_type),
        ("$.entity.id", query.entity_id),
        ("$.entity.business_key", query.business_key),
        ("$.entity.sub_key", query.sub_key),
    ):
        if value is not None and _SAFE_VALUE.fullmatch(value):
            terms.append(f'{path} = "{value}"')
    if query.status is not None:
        kinds = sorted(STATUSES[query.status])
        terms.append("(" + " || ".join(f'$.kind = "{k}"' for k in kinds) + ")")
    return "{ " + " && ".join(terms) + " }" if terms else None


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class CloudWatchQueryAdapter(QueryAdapter, TrendSource):
    Settings = CloudWatchSourceSettings
    settings: CloudWatchSourceSettings

    def __init__(self, name: str, settings: CloudWatchSourceSettings) -> None:
        super().__init__(name, settings)
        self._clients = Clients(settings)

    async def close(self) -> None:
        await self._clients.close()

    async def health(self) -> Health:
        return await logs_health(self._clients)

    async def query(self, query: Query) -> QueryResult:
        after = query.after_cursor()
        kwargs: dict[str, Any] = {}
        start = query.start
        if after is not None and (start is None or after[0] > start):
            start = after[0]
        if start is not None:
            kwargs["startTime"] = math.floor(start.timestamp() * 1000)
        if query.end is not None:
            kwargs["endTime"] = math.ceil(query.end.timestamp() * 1000)
        pattern = filter_pattern(query)
        if pattern:
            kwargs["filterPattern"] = pattern
        client = await self._clients.get("logs")
        kept: list[tuple[tuple[datetime, UUID], Event]] = []
        seen: set[UUID] = set()  # at-least-once delivery may have stored a line twice
        scanned = 0
        undecodable: Counter[str] = Counter()
        try:
            for group, streams in await self._targets(client, query):
                request = dict(kwargs, logGroupName=group)
                if streams:
                    request["logStreamNames"] = streams
                async for item in _log_events(client, request):
                    scanned += 1
                    if scanned > self.settings.max_scan_events:
                        raise QueryTooBroad(
                            f"source {self.name!r}: more than {self.settings.max_scan_events}"
                            " log events in the range; narrow the query's time range"
                        )
                    try:
                        event = wafermon.decode_event(item["message"])
                    except EventDecodeError:
                        undecodable[group] += 1
                        continue
                    if event.event_id in seen or not query.matches(event):
                        continue
                    if after is not None and event.sort_key <= after:
                        continue
                    seen.add(event.event_id)
                    kept.append((event.sort_key, event))
                    if len(kept) > _TRIM_FACTOR * (query.limit + 1):
                        kept = heapq.nsmallest(query.limit + 1, kept, key=lambda k: k[0])
        except (ClientError, BotoCoreError) as exc:
            raise delivery_error("FilterLogEvents", exc) from exc
        if undecodable:
            log.warning("skipped %d log lines that are not wafermon events", undecodable.total())
        found = [event for _, event in heapq.nsmallest(query.limit + 1, kept, key=lambda k: k[0])]
        page, more = found[: query.limit], len(found) > query.limit
        return QueryResult(page, wafermon.encode_cursor(page[-1]) if more else None)

    async def _targets(self, client: Any, query: Query) -> list[tuple[str, list[str] | None]]:
        """(log group, stream names or None for all) pairs the query can touch."""
        s = self.settings
        stream_fields = _fields(s.log_stream)
        streams = None
        if query.app is not None and stream_fields <= {"app"}:
            streams = [log_stream_name(s.log_stream, "", query.app)]
        group_fields = _fields(s.log_group)
        if query.site_id is not None and group_fields <= {"site_id"}:
            return [(log_group_name(s.log_group, query.site_id), streams)]
        if query.site_id is not None and query.app is not None:
            return [(log_group_name(s.log_group, query.site_id, query.app), streams)]
        # Every group under the template's fixed prefix; the site is checked per event.
        prefix = s.log_group.split("{", 1)[0]
        groups = []
        paginator = client.get_paginator("describe_log_groups")
        async for page in paginator.paginate(**({"logGroupNamePrefix": prefix} if prefix else {})):
            groups += [g["logGroupName"] for g in page.get("logGroups", [])]
        return [(group, streams) for group in groups]

    def trend_metrics(self) -> dict[str, str]:
        """Every metric the emitter writes, with its CloudWatch unit."""
        return dict(metrics.METRIC_UNITS)

    async def trends(self, query: TrendQuery) -> list[TrendSeries]:
        """``query.metric`` per period through GetMetricData, with the dimensions the emitter
        writes: Site (the site's total), Site + App, plus the configured static ones.

        ``by_app`` first lists the metric's Site + App series (ListMetrics, exact dimension
        set checked here) and asks for at most MAX_TREND_SERIES of them in one request.
        """
        if query.metric not in metrics.METRIC_UNITS:
            raise FieldValueError("metric", f"unknown metric {query.metric!r}")
        static = self.settings.dimensions
        try:
            if query.by_app:
                apps = await self._apps(query.metric, query.site_id)
            else:
                apps = [query.app]
            sets = [
                metrics.dimension_sets(query.site_id, app or "", static)[0 if app is None else 1]
                for app in apps
            ]
            found = await self._metric_data(query, sets) if sets else {}
        except (ClientError, BotoCoreError) as exc:
            raise delivery_error("GetMetricData", exc) from exc
        return [
            TrendSeries(app or query.site_id, app, sorted(found.get(n, [])))
            for n, app in enumerate(apps)
        ]

    async def _apps(self, metric: str, site_id: str) -> list[str]:
        """The apps with a Site + App series of ``metric`` (at most MAX_TREND_SERIES)."""
        wanted = {"Site", "App", *self.settings.dimensions}
        fixed = {"Site": site_id, **self.settings.dimensions}
        client = await self._clients.get("cloudwatch")
        apps: set[str] = set()
        paginator = client.get_paginator("list_metrics")
        pages = paginator.paginate(
            Namespace=self.settings.namespace,
            MetricName=metric,
            Dimensions=[{"Name": k, "Value": v} for k, v in fixed.items()],
        )
        async for page in pages:
            for found in page.get("Metrics", []):
                dims = {d["Name"]: d["Value"] for d in found.get("Dimensions", [])}
                if found.get("Namespace", self.settings.namespace) != self.settings.namespace:
                    continue
                if set(dims) == wanted and all(dims[k] == v for k, v in fixed.items()):
                    apps.add(dims["App"])
        return sorted(apps)[:MAX_TREND_SERIES]

    async def _metric_data(
        self, query: TrendQuery, sets: list[tuple[tuple[str, str], ...]]
    ) -> dict[int, list[tuple[datetime, float]]]:
        """GetMetricData for one series per dimension set: index -> (time, value) points."""
        request = {
            "MetricDataQueries": [
                {
                    "Id": f"m{n}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": self.settings.namespace,
                            "MetricName": query.metric,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                        },
                        "Period": query.period,
                        "Stat": _STATS[query.stat],
                    },
                }
                for n, dims in enumerate(sets)
            ],
            "StartTime": query.start,
            "EndTime": query.end,
            "ScanBy": "TimestampAscending",
        }
        client = await self._clients.get("cloudwatch")
        found: dict[int, list[tuple[datetime, float]]] = {}
        async for page in client.get_paginator("get_metric_data").paginate(**request):
            for result in page.get("MetricDataResults", []):
                points = found.setdefault(int(result["Id"][1:]), [])
                points += zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
                if len(points) > MAX_TREND_POINTS:  # never more than asked for: bounded
                    raise QueryTooBroad(f"GetMetricData sent more than {MAX_TREND_POINTS} points")
        return found


async def _log_events(client: Any, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Every log event FilterLogEvents returns for ``request``; a log group that does not
    exist (a site that never wrote) has none."""
    try:
        async for page in client.get_paginator("filter_log_events").paginate(**request):
            for item in page.get("events", []):
                yield item
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
