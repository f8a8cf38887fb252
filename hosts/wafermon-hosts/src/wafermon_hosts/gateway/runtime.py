"""The running gateway: its components, their lifecycle, its metrics and the store-call rules.

Start-up follows the core's plugin rule: the managed store is what the gateway is for, so a
store that cannot start stops the process with the backend's name and reason; a source that
cannot start is logged, shown as failed in /v1/healthz and retried on use (at most every
``SOURCE_RETRY_S``), so a source that was down at boot comes back without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from functools import partial
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from wafermon import Health, QueryAdapter, RetryableError, describe
from wafermon.errors import FieldValueError
from wafermon.plugins import Plugins

from ..common.errors import ApiError, bad_parameter
from ..common.health import CachedCheck
from ..common.limits import ByteBudget
from ..common.logs import get_logger
from ..common.metrics import HostMetrics
from ..common.supervise import Supervised, checked_health
from ..common.tracing import Tracing
from .archive import archive_source, retain
from .consume import StreamCollector, StreamRunner
from .health import report as health_report
from .settings import MANAGED, GatewayParts
from .stream import HEARTBEAT_S, Broadcaster

log = get_logger("wafermon_hosts.gateway")
#: Request bodies held at once, in units of max_body_bytes (each request may use one unit).
BODY_BUDGET_BODIES = 4

SOURCE_RETRY_S = 30.0
#: Seconds a client is asked to wait before retrying when the store is down.
RETRY_AFTER_S = 5

T = TypeVar("T")


class StoreStartError(RuntimeError):
    """The managed store did not start; the message names the backend and the reason."""


class SourceUnavailable(Exception):
    """A source that failed to start and is not due for another attempt yet."""


class GatewayMetrics(HostMetrics):
    """The shared request metrics plus the gateway's own."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.events = Counter(
            "wafermon_gateway_events",
            "Events posted to /v1/ingest/managed, by outcome (accepted, duplicate, rejected).",
            ["outcome"],
            registry=r,
        )
        self.unified_sources = Counter(
            "wafermon_gateway_unified_source_queries",
            "Per-source answers in /v1/data/unified, by source and status (ok, failed, timed_out).",
            ["source", "status"],
            registry=r,
        )
        self.sse_subscribers = Gauge(
            "wafermon_gateway_sse_subscribers", "Open /v1/stream connections.", registry=r
        )
        self.sse_dropped = Counter(
            "wafermon_gateway_sse_dropped_events",
            "Events dropped from slow /v1/stream subscribers' queues.",
            registry=r,
        )
        self.store_up = Gauge(
            "wafermon_gateway_store_up",
            "1 if the managed store's last health check was ok, else 0.",
            registry=r,
        )
        self.store_stats = Gauge(
            "wafermon_gateway_store_stat",
            "Numbers the managed store reports, e.g. its connection pool (pool_checked_out).",
            ["stat"],
            registry=r,
        )
        self.retention_removed = Counter(
            "wafermon_gateway_retention_removed_events",
            "Events removed from the managed store by retention runs.",
            registry=r,
        )
        self.retention_failures = Counter(
            "wafermon_gateway_retention_failures", "Retention runs that raised.", registry=r
        )
        for outcome in ("accepted", "duplicate", "rejected"):
            self.events.labels(outcome)


class SourceHandle(Supervised[QueryAdapter]):
    """A query adapter under supervision, restarted lazily at most every SOURCE_RETRY_S."""

    def __init__(self, adapter: QueryAdapter, timeout: float) -> None:
        super().__init__(adapter, role="source", timeout=timeout, retry_s=SOURCE_RETRY_S)

    @property
    def adapter(self) -> QueryAdapter:
        return self.component

    async def ready(self) -> QueryAdapter:
        """The adapter, started; SourceUnavailable while a failed start is not due a retry."""
        if not await self.ensure_started():
            raise SourceUnavailable(self.error or "not started")
        return self.component


class Gateway:
    """Everything a request handler needs, reachable as ``request.app.state.gateway``."""

    def __init__(
        self,
        parts: GatewayParts,
        plugins: Plugins,
        *,
        tracing: Tracing | None = None,
        heartbeat_s: float | None = None,
    ) -> None:
        self.site_id = parts.site_id
        self.settings = parts.settings
        self.store = parts.store
        self.store_type = parts.store_type
        timeout = parts.settings.source_timeout
        self.sources = {n: SourceHandle(a, timeout) for n, a in parts.sources.items()}
        self.archive_source = archive_source(parts.sources)  # retention archives when set
        self.plugins = plugins
        self.tracing = tracing
        self.metrics = GatewayMetrics()
        self.body_budget = ByteBudget(BODY_BUDGET_BODIES * self.settings.max_body_bytes)
        self.stream = Broadcaster(
            on_subscribers=self.metrics.sse_subscribers.set,
            on_dropped=self.metrics.sse_dropped.inc,
            heartbeat_s=HEARTBEAT_S if heartbeat_s is None else heartbeat_s,
        )
        #: The healthz report, run at most once per health_ttl (open path: no work per call).
        self.health = CachedCheck(lambda: health_report(self), parts.settings.health_ttl)
        self.metrics.before_scrape(self._sample_health)
        self._retention: asyncio.Task[None] | None = None
        self.start_error: str | None = None  # why the store did not start, for the CLI
        #: gateway.streams: one consumer loop each, started after the store, stopped first.
        self.streams = {
            name: StreamRunner(self, name, consumer, max_in_flight)
            for name, (consumer, max_in_flight) in parts.streams.items()
        }
        if self.streams:
            self.metrics.registry.register(StreamCollector(self.streams))
        self.alerting: Any = None  # the alert engine (gateway.alerting), set by load_gateway

    @property
    def source_names(self) -> list[str]:
        """Every name the unified view accepts: the managed store first."""
        return [MANAGED, *self.sources]

    async def start(self) -> None:
        try:
            await self.store.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                await self.store.close()
            self.start_error = (
                f"managed store {self.store.name!r} (type {self.store_type}) failed to start: "
                f"{describe(exc)}"
            )
            log.error("gateway cannot start", error=self.start_error)
            raise StoreStartError(self.start_error) from exc
        for stat in self.store.stats():  # read again at every scrape
            self.metrics.store_stats.labels(stat).set_function(partial(self._store_stat, stat))
        await asyncio.gather(*(s.start() for s in self.sources.values()))
        self._retention = asyncio.create_task(self._retention_loop(), name="retention")
        for runner in self.streams.values():
            runner.start()
        log.info(
            "gateway started",
            site_id=self.site_id,
            store=self.store.name,
            sources=sorted(self.sources),
            failed_sources=sorted(n for n, s in self.sources.items() if not s.started),
        )

    async def close(self) -> None:
        # Streams first: the batch in hand is stored and committed while the store is open.
        await asyncio.gather(*(runner.stop() for runner in self.streams.values()))
        self.stream.close()
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        for source in self.sources.values():
            try:
                await source.close()
            except Exception as exc:  # noqa: BLE001 - close the rest regardless
                log.warning("source failed to close", source=source.name, error=describe(exc))
        await self.store.close()
        if self.tracing is not None:
            self.tracing.shutdown()
        log.info("gateway stopped", site_id=self.site_id)

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retention_interval)
            await self.run_retention()

    async def run_retention(self) -> int | None:
        """One retention run; failures are logged and counted, never raised."""
        try:
            removed = await retain(self)
        except Exception as exc:  # noqa: BLE001 - the next run tries again
            self.metrics.retention_failures.inc()
            log.warning("retention run failed", store=self.store.name, error=describe(exc))
            return None
        self.metrics.retention_removed.inc(removed)
        if removed:
            log.info("retention removed events", store=self.store.name, removed=removed)
        return removed

    def _store_stat(self, stat: str) -> float:
        return float(self.store.stats().get(stat, 0.0))

    async def _sample_health(self) -> None:
        await self.health.get()  # sets store_up; cached, so a scrape costs no store work

    async def store_health(self) -> Health:
        health = await checked_health(self.store, self.settings.source_timeout)
        self.metrics.store_up.set(1 if health.ok else 0)
        return health

    async def call_store(self, call: Awaitable[T], names: Mapping[str, str] | None = None) -> T:
        """Await a store call; store down -> 503 with Retry-After, a bad value -> 400.

        ``names`` maps the store's field names to what the client wrote (``start`` -> ``since``).
        A PermanentError is left to the caller: only ingest can get one, and reports it per event.
        """
        try:
            return await call
        except FieldValueError as exc:
            field = (names or {}).get(exc.field, exc.field)
            raise bad_parameter(field, exc.message) from None
        except (RetryableError, OSError) as exc:  # OSError covers unwrapped connection errors
            log.warning("managed store unavailable", store=self.store.name, error=describe(exc))
            raise ApiError(
                503,
                f"the managed store is unavailable: {describe(exc)}",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
