"""Prometheus metrics in a registry owned by one app, never the process-global one.

Owning the registry lets several apps live in one process (tests, an embedded gateway) without
"duplicated timeseries" errors, and lets each host add its own metrics next to the shared
request metrics. Route labels are path *templates* (``/v1/jobs/{id}``), requests that match
no route share one label, and methods outside the standard set count as ``OTHER``, so no
client can blow up the label cardinality.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response

UNMATCHED_ROUTE = "<unmatched>"
#: The method label's values; anything else a client sends is counted as OTHER.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: Seconds; from a cached health check to a unified query that waits on a slow source.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class HostMetrics:
    """The registry of one app plus the request metrics every host exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "wafermon_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wafermon_http_request_duration_seconds",
            "Time from receiving a request to the end of its response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.insecure = Gauge(
            "wafermon_insecure",
            "1 when the config says insecure: true (scopes without a token are open).",
            registry=self.registry,
        )
        self.open_scope = Gauge(
            "wafermon_auth_open_scope",
            "1 for each token scope anyone may use without a token.",
            ["scope"],
            registry=self.registry,
        )
        self._before_scrape: list[Callable[[], Awaitable[None]]] = []
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def auth_state(self, *, insecure: bool, open_scopes: Iterable[str]) -> None:
        """Publish how the host's authentication is set up (see common.auth)."""
        self.insecure.set(1 if insecure else 0)
        for scope in open_scopes:
            self.open_scope.labels(scope).set(1)

    def before_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run ``refresh`` before each /metrics answer (e.g. to sample a health gauge).

        ``refresh`` must be cheap or cached: anyone who can reach /metrics can call it.
        """
        self._before_scrape.append(refresh)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:  # routes, methods and statuses are few: look the labels up once
            label = method if method in METHODS else "OTHER"
            children = (self.requests.labels(route, label, str(status)), self.latency.labels(route))
            if len(self._request_children) < 4096:
                self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    async def endpoint(self, _request: Request) -> Response:
        """GET /metrics in the Prometheus text format."""
        for refresh in self._before_scrape:
            await refresh()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
