"""The running sidecar: spool, router, backends, their lifecycle and what /metrics shows.

Start-up follows the sidecar's purpose: accepting is its job, so only the spool is fatal (a
spool that cannot be opened or is locked by another sidecar stops the process with the reason).
A backend that cannot start is logged and started again before each delivery attempt, under
the router's backoff and circuit breaker, so a backend that was down at boot needs no restart.

Acknowledging: ``append`` returns once the record is fsynced. Requests wait on the event
loop while one writer thread writes and fsyncs everything that queued during the previous
write (``wafermon.spool.GroupCommit``): no thread per waiting request, one fsync per burst.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from wafermon import Emitter, Event, EventBatch, Health, RetryableError, describe
from wafermon.plugins import Plugins
from wafermon.router import Breaker, Route, Router
from wafermon.spool import GroupCommit, Spool, SpoolFull

from ..common.errors import ApiError
from ..common.limits import ByteBudget
from ..common.logs import get_logger
from ..common.metrics import HostMetrics
from ..common.supervise import Supervised
from ..common.tracing import Tracing
from .settings import SidecarParts

log = get_logger("wafermon_hosts.sidecar")

#: Seconds a client is asked to wait before retrying when the spool is full or failing.
RETRY_AFTER_S = 5
#: Seconds a backend's start() may take before it counts as failed.
START_TIMEOUT_S = 30.0
LOCK_FILE = ".sidecar.lock"
BREAKER_VALUE = {Breaker.CLOSED: 0, Breaker.HALF_OPEN: 1, Breaker.OPEN: 2}
#: Decoded events the router may keep for backends that are behind (about 2 KB each).
MAX_DECODED_EVENTS = 10_000
#: Records whose ingest trace context the router keeps for their delivery spans.
#: Seconds before a backend's delivery loop resumes after its spool read or ack failed.
LOOP_RETRY_S = 1.0
#: Seconds between checks that the spool directory still exists.
DIR_CHECK_S = 1.0
#: Request bodies held at once, in units of max_body_bytes (each request may use one unit).
BODY_BUDGET_BODIES = 4


class SidecarStartError(RuntimeError):
    """The spool could not be opened; the message says why."""


class SupervisedEmitter(Emitter):
    """A backend's emitter, started lazily (``Supervised``): the router sees a failed start as
    a retryable failure of that backend only (backoff, breaker, /healthz), never as a reason to
    stop the sidecar."""

    def __init__(self, inner: Emitter, type_name: str) -> None:
        super().__init__(inner.name, inner.settings)
        self.inner = inner
        self.type_name = type_name
        self.supervised = Supervised(inner, role="backend", timeout=START_TIMEOUT_S)

    @property
    def started(self) -> bool:
        return self.supervised.started

    async def start(self) -> None:
        await self.supervised.start()

    async def emit(self, batch: Sequence[Event]) -> None:
        if not await self.supervised.ensure_started():
            raise RetryableError(self.supervised.error or "not started")
        await self.inner.emit(batch)

    async def health(self) -> Health:
        return await self.supervised.health()

    def stats(self) -> dict[str, float]:
        return self.inner.stats() if self.started else {}

    async def close(self) -> None:
        await self.supervised.close()


class SidecarMetrics(HostMetrics):
    """The shared request metrics, the sidecar's counters, and spool/backend state at scrape."""

    def __init__(self, sidecar: Sidecar) -> None:
        super().__init__()
        r = self.registry
        self.events = Counter(
            "wafermon_sidecar_events",
            "Events posted to /v1/ingest/events, by outcome (accepted, rejected).",
            ["outcome"],
            registry=r,
        )
        self.appends = Counter(
            "wafermon_sidecar_spool_appends",
            "Records appended to the spool (one per accepted request).",
            registry=r,
        )
        self.refused = Counter(
            "wafermon_sidecar_refused_requests",
            "Ingest requests answered 503, by reason (spool_full, spool_error, stopping).",
            ["reason"],
            registry=r,
        )
        # Looked up once: a labels() call per request is measurable on the ingest path.
        self.accepted = self.events.labels("accepted")
        self.rejected = self.events.labels("rejected")
        for why in ("spool_full", "spool_error", "stopping"):
            self.refused.labels(why)
        r.register(_StateCollector(sidecar))


class _StateCollector:
    """Spool and backend figures read from the live objects at each scrape."""

    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar

    def describe(self) -> list[Any]:
        return list(self._families().values())

    def collect(self) -> Iterator[Any]:
        spool, router = self.sidecar.spool, self.sidecar.router
        families = self._families()
        if spool is not None:
            families["bytes"].add_metric([], spool.size)
            families["max_bytes"].add_metric([], spool.max_bytes)
            families["segments"].add_metric([], spool.segment_count)
            families["last_seq"].add_metric([], spool.last_seq)
            families["fsyncs"].add_metric([], spool.fsyncs)
        if router is not None:
            for name, state in router.states.items():
                families["lag"].add_metric([name], router.lag(name))
                families["acked"].add_metric([name], state.acked_seq)
                families["delivered"].add_metric([name], state.delivered_events)
                families["retries"].add_metric([name], state.retries)
                families["dead_lettered"].add_metric([name], state.dead_lettered_events)
                families["fallback"].add_metric([name], state.fallback_events)
                families["breaker"].add_metric([name], BREAKER_VALUE[state.breaker])
        for name, emitter in self.sidecar.emitters.items():
            for stat, value in emitter.stats().items():
                families["stat"].add_metric([name, stat], value)
        yield from families.values()

    @staticmethod
    def _families() -> dict[str, Any]:
        p, b = "wafermon_sidecar_spool_", "wafermon_sidecar_backend_"
        backend = ["backend"]
        return {
            "bytes": GaugeMetricFamily(p + "bytes", "Bytes of the spool's segment files."),
            "max_bytes": GaugeMetricFamily(p + "max_bytes", "The spool's byte cap (503 above)."),
            "segments": GaugeMetricFamily(p + "segments", "Segment files in the spool."),
            "last_seq": GaugeMetricFamily(p + "last_seq", "Seq of the newest durable record."),
            "fsyncs": CounterMetricFamily(
                p + "fsyncs",
                "Group commits (one write + fsync for every append waiting); compare with "
                "wafermon_sidecar_spool_appends_total.",
            ),
            "lag": GaugeMetricFamily(
                b + "lag_records", "Spool records the backend has not acknowledged.", labels=backend
            ),
            "acked": GaugeMetricFamily(
                b + "acked_seq", "Highest spool seq the backend acknowledged.", labels=backend
            ),
            "delivered": CounterMetricFamily(
                b + "delivered_events", "Events the backend took.", labels=backend
            ),
            "retries": CounterMetricFamily(
                b + "retries", "Failed delivery attempts (each retried).", labels=backend
            ),
            "dead_lettered": CounterMetricFamily(
                b + "dead_lettered_events",
                "Events the backend rejected permanently, written to the dead-letter file.",
                labels=backend,
            ),
            "fallback": CounterMetricFamily(
                b + "fallback_events",
                "Events the backend rejected permanently, sent to its fallback backend.",
                labels=backend,
            ),
            "stat": GaugeMetricFamily(
                b + "stat",
                "Numbers a backend reports about itself, e.g. a connection pool's use.",
                labels=["backend", "stat"],
            ),
            "breaker": GaugeMetricFamily(
                b + "breaker_state",
                "Circuit breaker: 0 closed, 1 half-open, 2 open.",
                labels=backend,
            ),
        }


class Sidecar:
    """Everything a request handler needs, reachable as ``request.app.state.sidecar``."""

    def __init__(
        self, parts: SidecarParts, plugins: Plugins, *, tracing: Tracing | None = None
    ) -> None:
        self.site_id = parts.site_id
        self.settings = parts.settings
        self.spool_dir = parts.spool_dir
        self.dead_letter_dir = parts.dead_letter_dir
        self.types = parts.types
        self.plugins = plugins
        self.tracing = tracing
        self.emitters = {
            name: SupervisedEmitter(emitter, parts.types[name])
            for name, emitter in parts.emitters.items()
        }
        self.routes = [
            Route(
                p.name,
                self.emitters[p.name],
                fallback=self.emitters[p.fallback] if p.fallback else None,
                priority=p.priority,
            )
            for p in parts.routes
        ]
        self.spool: Spool | None = None
        self.router: Router | None = None
        self.accepting = False
        self.spool_error: str | None = None  # why the last append failed, until one succeeds
        self.start_error: str | None = None  # why the spool did not open, for the CLI
        self.metrics = SidecarMetrics(self)
        self.body_budget = ByteBudget(BODY_BUDGET_BODIES * self.settings.max_body_bytes)
        self._commit: GroupCommit | None = None
        self._lock_file: TextIO | None = None
        self._dir_checked_until = 0.0

    async def start(self) -> None:
        try:
            self.spool = await asyncio.to_thread(self._open_spool)
        except (OSError, ValueError, SidecarStartError) as exc:
            self._unlock()
            self.start_error = f"spool {self.spool_dir} cannot be opened: {describe(exc)}"
            log.error("sidecar cannot start", error=self.start_error)
            raise SidecarStartError(self.start_error) from exc
        self._commit = GroupCommit(self.spool)
        await asyncio.gather(*(e.start() for e in self.emitters.values()))
        self.router = Router(
            self.spool,
            self.routes,
            dead_letter_dir=self.dead_letter_dir,
            policy=self.settings.retry.policy(),
            batch_bytes=self.settings.delivery_batch_bytes,
            linger_s=self.settings.delivery_linger,
            loop_retry_s=LOOP_RETRY_S,
            max_decoded_events=MAX_DECODED_EVENTS,
            delivery_scope=self.tracing.delivery_scope if self.tracing else None,
        )
        self.router.start()
        self.accepting = True
        log.info(
            "sidecar started",
            site_id=self.site_id,
            spool=str(self.spool_dir),
            last_seq=self.spool.last_seq,
            backends={r.name: self.router.lag(r.name) for r in self.routes},
            failed_backends=sorted(n for n, e in self.emitters.items() if not e.started),
        )

    def _open_spool(self) -> Spool:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = (self.spool_dir / LOCK_FILE).open("a+")
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SidecarStartError(
                f"another sidecar holds {self.spool_dir / LOCK_FILE}; one process per spool"
            ) from None
        spool = self.settings.spool
        return Spool(
            self.spool_dir,
            [r.name for r in self.routes],
            max_bytes=spool.max_bytes,
            segment_bytes=spool.segment_bytes,
        )

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None

    def stop_accepting(self) -> None:
        """From now on ingest answers 503 (graceful shutdown has begun)."""
        if self.accepting:
            log.info("sidecar stopping: new ingest requests get 503")
        self.accepting = False

    async def append(self, record: EventBatch) -> int:
        """Append the batch's NDJSON as one record; return its seq once it is on disk (fsynced).

        Raises ApiError 503 (with Retry-After) when the spool refuses: nothing was stored.
        """
        payload = record.ndjson
        assert self.spool is not None
        assert self.router is not None
        assert self._commit is not None
        if not self._spool_dir_present():  # removed under us: appends would be lost
            self.metrics.refused.labels("spool_error").inc()
            raise ApiError(
                503,
                f"the spool directory {self.spool_dir} is gone; nothing was stored",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        try:
            seq = await self._commit.append(payload)
        except SpoolFull as exc:
            self.metrics.refused.labels("spool_full").inc()
            log.warning("spool full: refusing input", error=str(exc))
            raise ApiError(
                503,
                f"the spool is full ({self.spool.size} of {self.spool.max_bytes} bytes) while "
                "backends catch up; nothing was stored, retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        except OSError as exc:
            self.spool_error = describe(exc)
            self.metrics.refused.labels("spool_error").inc()
            log.error("spool write failed: refusing input", error=self.spool_error)
            raise ApiError(
                503,
                f"the spool cannot write ({self.spool_error}); nothing was stored, retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        self.spool_error = None
        self.metrics.appends.inc()
        self.router.remember(seq, record, self.tracing.carrier() if self.tracing else None)
        self.router.notify()
        return seq

    def _spool_dir_present(self) -> bool:
        """Whether the spool directory exists; checked at most every DIR_CHECK_S seconds
        while it does (a stat per request is measurable on slow-syscall hosts)."""
        now = time.monotonic()
        if now < self._dir_checked_until:
            return True
        present = os.path.isdir(self.spool_dir)
        self._dir_checked_until = now + DIR_CHECK_S if present else 0.0
        return present

    def spool_problem(self) -> str | None:
        """Why the spool cannot take input right now, or None."""
        if self.spool is None:
            return self.start_error or "not open"
        if self.spool_error is not None:
            return f"last append failed: {self.spool_error}"
        if not os.access(self.spool_dir, os.W_OK | os.X_OK):
            return f"{self.spool_dir} is not a writable directory"
        return None

    async def close(self) -> None:
        self.stop_accepting()
        if self.router is not None:
            drained = await self.router.drain(self.settings.drain_timeout)
            lag = {name: self.router.lag(name) for name in self.router.states}
            if drained:
                log.info("spool drained", backends=lag)
            else:
                log.warning(
                    "drain timed out; undelivered records stay in the spool for the next start",
                    timeout_s=self.settings.drain_timeout,
                    lag_records=lag,
                )
            await self.router.stop()
        for emitter in self.emitters.values():
            try:
                await emitter.close()
            except Exception as exc:  # noqa: BLE001 - close the rest regardless
                log.warning("backend failed to close", backend=emitter.name, error=describe(exc))
        if self._commit is not None:
            await self._commit.close()
        if self.spool is not None:
            self.spool.close()
        self._unlock()
        if self.tracing is not None:
            self.tracing.shutdown()
        log.info("sidecar stopped", site_id=self.site_id)
