"""The running central host: one client per site, the answer cache, metrics, fan-out.

``fan_out`` asks several sites at once and always returns one ``SiteAnswer`` per site within
the slowest site's timeout: a dead or slow site becomes a ``failed`` / ``timed_out`` answer,
never an exception, so every route can answer with what the other sites returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlencode

import attrs
from prometheus_client import Counter, Gauge, Histogram

from wafermon.plugins import Plugins

from ..common.health import CachedCheck
from ..common.logs import get_logger
from ..common.metrics import LATENCY_BUCKETS, HostMetrics
from ..common.tracing import Tracing
from .cache import AnswerCache
from .settings import CentralSettings
from .sites import SiteAnswer, SiteClient

log = get_logger("wafermon_hosts.central")


class CentralMetrics(HostMetrics):
    """The shared request metrics plus central's own."""

    def __init__(self, sites: Sequence[str]) -> None:
        super().__init__()
        r = self.registry
        self.site_requests = Counter(
            "wafermon_central_site_requests",
            "Requests central sent to each site, by outcome (ok, rejected, failed, timed_out).",
            ["site", "outcome"],
            registry=r,
        )
        self.site_latency = Histogram(
            "wafermon_central_site_request_duration_seconds",
            "Time each site took to answer central (cache hits not included).",
            ["site"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.site_up = Gauge(
            "wafermon_central_site_up",
            "1 if the site's last answer to central was complete, else 0.",
            ["site"],
            registry=r,
        )
        self.cache = Counter(
            "wafermon_central_cache_lookups",
            "Answer cache lookups by result (hit, miss).",
            ["result"],
            registry=r,
        )
        self.cache_entries = Gauge(
            "wafermon_central_cache_entries", "Answers held in the cache.", registry=r
        )
        self.partial = Counter(
            "wafermon_central_partial_answers",
            "Answers that lacked at least one site (failed or timed out), by route.",
            ["route"],
            registry=r,
        )
        for site in sites:
            for outcome in ("ok", "rejected", "failed", "timed_out"):
                self.site_requests.labels(site, outcome)
        for result in ("hit", "miss"):
            self.cache.labels(result)


class Central:
    """Everything a request handler needs, reachable as ``request.app.state.central``."""

    def __init__(
        self,
        site_id: str,
        settings: CentralSettings,
        *,
        plugins: Plugins | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.site_id = site_id
        self.settings = settings
        self.plugins = plugins  # for routes plugins add to host "central"
        self.tracing = tracing
        self.site_names = [s.name for s in settings.sites]
        self.metrics = CentralMetrics(self.site_names)
        self.cache = AnswerCache(settings.cache_ttl, settings.cache_max_entries)
        self.clients: dict[str, SiteClient] = {}
        self.metrics.before_scrape(self._sample_cache)
        #: The sites' health answers, asked at most once per health_ttl (open path).
        self.health = CachedCheck(self._ask_health, settings.health_ttl)

    async def start(self) -> None:
        self.clients = {
            s.name: SiteClient(
                s,
                timeout=self.settings.timeout_of(s),
                max_connections=self.settings.max_concurrency,
                max_bytes=self.settings.max_answer_bytes,
            )
            for s in self.settings.sites
        }
        log.info("central started", site_id=self.site_id, sites=self.site_names)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients.values()))
        self.clients = {}
        if self.tracing is not None:
            self.tracing.shutdown()
        log.info("central stopped", site_id=self.site_id)

    async def _ask_health(self) -> dict[str, SiteAnswer]:
        return await self.fan_out({n: ("/v1/healthz", []) for n in self.site_names}, cached=False)

    async def _sample_cache(self) -> None:
        self.metrics.cache_entries.set(len(self.cache))

    def _record(self, answer: SiteAnswer) -> None:
        if answer.cached:
            return
        self.metrics.site_requests.labels(answer.site, answer.status).inc()
        self.metrics.site_latency.labels(answer.site).observe(answer.latency_ms / 1000)
        self.metrics.site_up.labels(answer.site).set(0 if answer.missing else 1)
        if answer.missing:
            log.warning(
                "site missing from answer",
                site=answer.site,
                status=answer.status,
                error=answer.error,
            )

    async def get(
        self,
        site: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        cached: bool = True,
        refresh: bool = False,
    ) -> SiteAnswer:
        """One site's answer to GET ``path?params``; from the cache when fresh (``cached``)."""
        client = self.clients[site]
        if not cached:
            answer = await client.get(path, params)
            self._record(answer)
            return answer
        key = (site, path + ("?" + urlencode(list(params)) if params else ""))

        async def load() -> SiteAnswer:
            answer = await client.get(path, params)
            self._record(answer)
            return answer

        answer, hit = await self.cache.fetch(
            key, load, cacheable=lambda a: a.status == "ok", refresh=refresh
        )
        self.metrics.cache.labels("hit" if hit else "miss").inc()
        if hit:
            return attrs.evolve(answer, cached=True, latency_ms=0.0)
        return answer

    async def fan_out(
        self,
        requests: dict[str, tuple[str, Sequence[tuple[str, str]]]],
        *,
        refresh: bool = False,
        cached: bool = True,
    ) -> dict[str, SiteAnswer]:
        """site -> answer for {site: (path, params)}, all asked at once."""
        names = list(requests)
        answers = await asyncio.gather(
            *(
                self.get(n, requests[n][0], requests[n][1], refresh=refresh, cached=cached)
                for n in names
            )
        )
        return dict(zip(names, answers, strict=True))
