"""The backend router: drains a Spool to every enabled backend, never giving up, never losing.

Each backend has its own delivery loop, position (its acknowledged seq in the spool) and
circuit breaker, so a dead backend stalls nobody else, and memory stays bounded because what a
backend has not taken stays on disk, not in a queue. Delivery is at-least-once: a record is
acknowledged for a backend only after ``emit`` returned.

Failures:
- RetryableError, a timeout, or any unexpected exception: retry the same batch with
  exponential backoff and full jitter (waiting at least a ``retry_after`` the backend asked
  for), forever (no silent give-up). After ``failure_threshold`` failures in a row the breaker
  opens: no calls for ``open_seconds``, then one half-open probe.
- PermanentError: the events it names (or the whole batch) go to the backend's ``fallback``
  backend when it has one, else to a dead-letter file ``dead-letter/<backend>.jsonl`` with the
  reason; then the batch is acknowledged. Every such event is counted.
- A failing spool read or ack (a full disk, EIO, an ack file removed) does not end a backend's
  loop: it is logged, shown as the backend's ``last_error`` with its circuit open, and the loop
  resumes from the acknowledged position after ``loop_retry_s``.

Backends get each delivery as an ``EventBatch``: the records' NDJSON bytes, decoded into
events only if the backend asks (the gateway forwarder and file writers never do). A host that
has the events of a record at hand (decoded at ingest) hands them over with
``remember(seq, batch)``; a record read back from disk is decoded at most once, shared by every
loop. That cache is bounded by events and by records, so a dead backend cannot grow memory.

A host that wants each delivery to run inside something of its own (the sidecar: a tracing span
continuing the requests that brought the records) passes ``delivery_scope`` and hands each
record's context to ``remember``; the core itself knows nothing of tracing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs
import orjson

from .batch import EventBatch
from .codec import to_json_dict
from .config import describe
from .errors import PermanentError, RetryableError, retry_delay
from .events import Event
from .interfaces import Emitter
from .spool import Spool

log = logging.getLogger(__name__)

#: Seconds between cancelling the delivery loops again while the router stops.
STOP_RECHECK_S = 0.5

#: Record contexts kept for ``delivery_scope`` (oldest dropped first): they are telemetry, not
#: data, so a record delivered after a restart or far behind simply has none.
MAX_RECORD_CONTEXTS = 10_000

#: ``delivery_scope(backend, seqs, contexts)``: entered around delivering the records ``seqs``
#: to ``backend`` (every attempt), with the contexts ``remember`` was given for them.
DeliveryScope = Callable[
    [str, Sequence[int], Sequence[Mapping[str, str]]], contextlib.AbstractContextManager[object]
]


class Breaker(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@attrs.frozen
class RetryPolicy:
    """How hard the router tries one backend."""

    timeout_s: float = 30.0
    base_delay_s: float = 0.2
    max_delay_s: float = 30.0
    failure_threshold: int = 5
    open_seconds: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1, 2, ...), see ``retry_delay``."""
        return retry_delay(
            attempt, base_s=self.base_delay_s, max_s=self.max_delay_s, retry_after=retry_after
        )


@attrs.define
class BackendState:
    """What /healthz and /metrics show for one backend."""

    name: str
    acked_seq: int
    breaker: Breaker = Breaker.CLOSED
    consecutive_failures: int = 0
    delivered_events: int = 0
    retries: int = 0
    dead_lettered_events: int = 0
    fallback_events: int = 0
    last_error: str | None = None
    last_success: float | None = None


@attrs.define
class Route:
    """One backend the router delivers to, and where its permanent rejects go."""

    name: str
    emitter: Emitter
    fallback: Emitter | None = None
    priority: int = 100


class Router:
    def __init__(
        self,
        spool: Spool,
        routes: Sequence[Route],
        *,
        dead_letter_dir: Path,
        policy: RetryPolicy = RetryPolicy(),
        batch_bytes: int = 4 * 2**20,
        poll_s: float = 1.0,
        linger_s: float = 0.0,
        loop_retry_s: float = 1.0,
        max_decoded_events: int = 10_000,
        max_decoded_records: int = 256,
        delivery_scope: DeliveryScope | None = None,
    ) -> None:
        self.spool = spool
        self.routes = sorted(routes, key=lambda r: r.priority)
        self.policy = policy
        self.batch_bytes = batch_bytes
        self.poll_s = poll_s
        self.linger_s = linger_s
        self.dead_letter_dir = dead_letter_dir
        self.states = {r.name: BackendState(r.name, spool.acked[r.name]) for r in self.routes}
        self._wakes = {r.name: asyncio.Event() for r in self.routes}
        self.loop_retry_s = loop_retry_s
        self.max_decoded_events = max_decoded_events
        self.max_decoded_records = max_decoded_records
        self._tasks: list[asyncio.Task[None]] = []
        self._decoded: dict[int, EventBatch] = {}  # recent records, shared by the loops
        self._decoded_events = 0  # events in self._decoded
        self.delivery_scope = delivery_scope
        self._contexts: dict[int, Mapping[str, str]] = {}

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._supervised_loop(r), name=f"route-{r.name}")
            for r in self.routes
        ]

    def remember(
        self, seq: int, events: Sequence[Event], context: Mapping[str, str] | None = None
    ) -> None:
        """The events of record ``seq`` (an EventBatch of its bytes, or the decoded events),
        and the context ``delivery_scope`` gets for it."""
        if context:
            self._contexts[seq] = context
            while len(self._contexts) > MAX_RECORD_CONTEXTS:
                del self._contexts[next(iter(self._contexts))]
        self._cache(seq, EventBatch.from_events(events).to_keep())

    def notify(self) -> None:
        """New records are in the spool: wake the loops instead of waiting for their poll."""
        for wake in self._wakes.values():
            wake.set()

    async def stop(self) -> None:
        """Cancel every delivery loop and wait until each has ended.

        A cancellation can be lost when it lands as an awaited call finishes (Python 3.11's
        ``asyncio.wait_for`` returns the result then), so loops still running are cancelled
        again until none is left rather than waited for forever.
        """
        pending = {t for t in self._tasks if not t.done()}
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=STOP_RECHECK_S)

    async def drain(self, timeout: float) -> bool:
        """Wait until every backend acknowledged everything durable now (graceful shutdown)."""
        target = self.spool.last_seq
        deadline = time.monotonic() + timeout
        while any(s.acked_seq < target for s in self.states.values()):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def lag(self, name: str) -> int:
        return max(0, self.spool.last_seq - self.states[name].acked_seq)

    # -- one backend's loop ---------------------------------------------------------------------

    async def _supervised_loop(self, route: Route) -> None:
        state = self.states[route.name]
        while True:
            try:
                await self._deliver_loop(route)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # logged, shown, then resumed
                state.last_error = f"delivery loop failed: {describe(exc)}"
                state.breaker = Breaker.OPEN
                log.error("backend %s: delivery loop failed; resuming", route.name, exc_info=exc)
                await asyncio.sleep(self.loop_retry_s)

    async def _deliver_loop(self, route: Route) -> None:
        state, wake = self.states[route.name], self._wakes[route.name]
        while True:
            wake.clear()  # before reading, so a notify during the read is not lost
            records = await asyncio.to_thread(self.spool.read, state.acked_seq, self.batch_bytes)
            if not records:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await wake.wait()
                continue
            events = EventBatch.concat([self._events(seq, payload) for seq, payload in records])
            with self._scope(route.name, [seq for seq, _ in records]):
                await self._deliver(route, state, events)
            last = records[-1][0]
            await asyncio.to_thread(self.spool.ack, route.name, last)
            state.acked_seq = last
            self._forget_decoded()
            if (
                sum(len(payload) for _, payload in records) < self.batch_bytes
                and self.spool.size < self.spool.max_bytes // 2
            ):
                # Less than a full batch: let records gather before the next. Each delivery
                # costs a read, an emit and an acknowledgement (each a thread hand-off, two
                # of them fsyncs) whatever its size, so under a stream of small records this
                # turns many small batches into few large ones. Never with the spool half
                # full: producers are about to be refused, the backends must take it now.
                await asyncio.sleep(self.linger_s)

    def _scope(self, backend: str, seqs: list[int]) -> contextlib.AbstractContextManager[object]:
        if self.delivery_scope is None:
            return contextlib.nullcontext()
        contexts = [self._contexts[seq] for seq in seqs if seq in self._contexts]
        return self.delivery_scope(backend, seqs, contexts)

    def _events(self, seq: int, payload: bytes) -> EventBatch:
        events = self._decoded.get(seq)
        if events is None:
            # The spool holds only events that were validated on the way in.
            events = EventBatch.from_ndjson(payload)
            self._cache(seq, events)
        return events

    def _cache(self, seq: int, events: EventBatch) -> None:
        old = self._decoded.pop(seq, None)
        self._decoded_events += len(events) - (len(old) if old is not None else 0)
        self._decoded[seq] = events
        self._trim()

    def _forget_decoded(self) -> None:
        """After each acknowledged batch: drop what every backend has taken."""
        floor = min(s.acked_seq for s in self.states.values())
        for seq in [s for s in self._decoded if s <= floor]:
            self._decoded_events -= len(self._decoded.pop(seq))
        for seq in [s for s in self._contexts if s <= floor]:
            del self._contexts[seq]
        self._trim()

    def _trim(self) -> None:
        """Oldest first (a backend far behind decodes again), keeping the newest record."""
        decoded = self._decoded
        while len(decoded) > 1 and (
            self._decoded_events > self.max_decoded_events
            or len(decoded) > self.max_decoded_records
        ):
            self._decoded_events -= len(decoded.pop(next(iter(decoded))))

    async def _deliver(self, route: Route, state: BackendState, events: EventBatch) -> None:
        """Return only once the batch is delivered, fallen back or dead-lettered."""
        attempt = 0
        while True:
            await self._wait_for_breaker(state)
            try:
                async with asyncio.timeout(self.policy.timeout_s):
                    await route.emitter.emit(events)
            except PermanentError as exc:
                self._succeeded(state)
                rejected = _rejected(events, exc)
                state.delivered_events += len(events) - len(rejected)
                await self._reject(route, state, rejected, str(exc))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every other failure is retried
                attempt += 1
                self._failed(state, exc)
                await asyncio.sleep(self.policy.delay(attempt, getattr(exc, "retry_after", None)))
                continue
            self._succeeded(state)
            state.delivered_events += len(events)
            return

    async def _wait_for_breaker(self, state: BackendState) -> None:
        if state.breaker is Breaker.OPEN:
            await asyncio.sleep(self.policy.open_seconds)
            state.breaker = Breaker.HALF_OPEN

    def _failed(self, state: BackendState, exc: BaseException) -> None:
        state.consecutive_failures += 1
        state.retries += 1
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        kind = "retryable" if isinstance(exc, RetryableError | TimeoutError) else "unexpected"
        if kind == "unexpected" and str(exc):  # a plugin bug: its class comes first
            reason = f"{type(exc).__name__}: {reason}"
        state.last_error = f"{kind}: {reason}"
        if state.consecutive_failures == 1:
            # Once per failure streak (not per retry), with the traceback a plugin author can
            # act on; health shows the backend degraded from now until a success.
            log.warning(
                "backend %s: emit failed (%s), retrying: %s",
                state.name,
                type(exc).__name__,
                reason,
                exc_info=None if isinstance(exc, TimeoutError) else exc,
            )
        if state.breaker is Breaker.HALF_OPEN or (
            state.consecutive_failures >= self.policy.failure_threshold
        ):
            if state.breaker is not Breaker.OPEN:
                log.warning(
                    "backend %s: circuit open after %d failures: %s",
                    state.name,
                    state.consecutive_failures,
                    state.last_error,
                )
            state.breaker = Breaker.OPEN
        elif state.consecutive_failures > 1:
            log.info("backend %s: attempt failed, retrying: %s", state.name, state.last_error)

    def _succeeded(self, state: BackendState) -> None:
        if state.breaker is not Breaker.CLOSED:
            log.warning("backend %s: circuit closed again", state.name)
        state.breaker = Breaker.CLOSED
        state.consecutive_failures = 0
        state.last_success = time.time()

    async def _reject(
        self, route: Route, state: BackendState, events: Sequence[Event], reason: str
    ) -> None:
        if route.fallback is not None:
            try:
                async with asyncio.timeout(self.policy.timeout_s):
                    await route.fallback.emit(events)
                state.fallback_events += len(events)
                log.warning(
                    "backend %s rejected %d events (%s); sent to fallback %s",
                    state.name,
                    len(events),
                    reason,
                    route.fallback.name,
                )
                return
            except Exception as exc:  # noqa: BLE001 - the dead-letter file is the last resort
                reason = f"{reason}; fallback {route.fallback.name} failed too: {exc}"
        await asyncio.to_thread(self._dead_letter, state.name, events, reason)
        state.dead_lettered_events += len(events)
        log.error(
            "backend %s rejected %d events permanently: %s (see %s)",
            state.name,
            len(events),
            reason,
            self.dead_letter_dir,
        )

    def _dead_letter(self, backend: str, events: Sequence[Event], reason: str) -> None:
        self.dead_letter_dir.mkdir(parents=True, exist_ok=True)
        when = datetime.now(UTC).isoformat()
        lines = b"".join(
            orjson.dumps(
                {
                    "backend": backend,
                    "reason": reason,
                    "rejected_at": when,
                    "event": to_json_dict(e),
                }
            )
            + b"\n"
            for e in events
        )
        with (self.dead_letter_dir / f"{backend}.jsonl").open("ab") as file:
            file.write(lines)
            file.flush()
            os.fsync(file.fileno())


def _rejected(events: EventBatch, exc: PermanentError) -> Sequence[Event]:
    if exc.event_ids is None:
        return events
    ids = {str(i) for i in exc.event_ids}
    return [e for e in events if str(e.event_id) in ids]
