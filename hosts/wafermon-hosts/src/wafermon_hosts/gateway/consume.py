"""``gateway.streams``: the gateway as one member of a consumer group on a Kafka/NATS stream.

Each entry builds the plugin's ``StreamConsumer`` (hook ``register_consumers``) and runs one
loop: fetch at most ``max_in_flight`` messages, decode them with the fast wire decoder, store
them through the same path as ``POST /v1/ingest/managed`` (``ingest.store_batch``: idempotent
by ``event_id``), dead-letter the messages that cannot be stored with the reason, and only then
commit the batch. So:

- at-least-once from the broker becomes exactly-once in the store: a batch stored but not
  committed (kill -9, a rebalance) comes again and its events are duplicates;
- the store down means no commit: the batch in hand is stored again with the core's backoff
  (``RetryPolicy.delay``) until it goes in, and nothing more is fetched meanwhile, which is the
  backpressure: memory stays at one batch per stream;
- a message that is not an event, an array or NDJSON, or holds events the decoder rejects, is
  dead-lettered with the decoder's ``explain()`` reasons; the rest of its events are stored; it
  never blocks its partition;
- on stop (SIGTERM) the batch in hand is finished if the store takes it within the stop grace,
  otherwise left uncommitted for another member.

Lag per partition is sampled by ``/v1/healthz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, cast

import attrs
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from wafermon import Health, Problem, StreamBatch, StreamConsumer, describe
from wafermon.config import LoadedConfig
from wafermon.errors import BatchDecodeError
from wafermon.ingest import Verdict
from wafermon.plugins import Plugins
from wafermon.router import RetryPolicy
from wafermon.wire import BatchReader, TooManyEvents, WireBatch

from ..common.errors import ApiError
from ..common.logs import get_logger
from ..common.settings import positive as _positive
from .bodies import StreamCheck

log = get_logger("wafermon_hosts.gateway.streams")

#: Seconds one fetch waits for the first message (then the loop checks whether to stop).
FETCH_WAIT_S = 1.0
#: Seconds a stopping gateway gives the batch in hand to reach the store and be committed.
STOP_GRACE_S = 10.0
#: Backoff between attempts while the broker or the store is down.
BACKOFF = RetryPolicy(base_delay_s=0.2, max_delay_s=10.0)
#: A dead-letter reason names at most this many rejected events.
MAX_REASONS = 20


@attrs.frozen
class StreamEntry:
    """One entry of ``gateway.streams``."""

    name: str
    type: str
    config: dict[str, Any] = attrs.Factory(dict)
    #: Messages fetched, stored and committed together (a message may hold many events).
    max_in_flight: int = attrs.field(default=500, validator=_positive)


def build_consumers(
    loaded: LoadedConfig, plugins: Plugins, entries: list[StreamEntry], problems: list[Problem]
) -> dict[str, tuple[StreamConsumer, int]]:
    """name -> (consumer, max_in_flight) for each entry; problems get key paths and lines.

    A missing plugin raises PluginError (naming the entry), as for backends.
    """
    from wafermon import ConfigError

    built: dict[str, tuple[StreamConsumer, int]] = {}
    for index, entry in enumerate(entries):
        where = f"$.gateway.streams[{index}]"
        if entry.name in built:
            problems.append(loaded.problem(f"{where}.name", f"duplicate name {entry.name!r}"))
            continue
        line = loaded.lines.get(f"{where}.type")
        needed_by = f"{loaded.path}{f':{line}' if line else ''}: gateway.streams[{index}]"
        provided = plugins.require("consumer", entry.type, needed_by=f"{needed_by} {entry.name!r}")
        try:
            settings = loaded.structure(provided.cls.Settings, entry.config, f"{where}.config")
        except ConfigError as exc:
            problems.extend(attrs.evolve(p, path=f"$.{p.path}") for p in exc.problems)
            continue
        consumer = cast(StreamConsumer, provided.cls(name=entry.name, settings=settings))
        built[entry.name] = (consumer, entry.max_in_flight)
    return built


def combine(messages: list[Any], max_events: int) -> tuple[WireBatch, list[int], dict[int, str]]:
    """Decode every message into one batch: the batch, the message of each batch index, and
    the reason for each message that is unreadable as a whole."""
    combined = WireBatch()
    owner: list[int] = []
    unreadable: dict[int, str] = {}
    for number, message in enumerate(messages):
        try:
            batch = BatchReader(message.body, max_events).read_all()
        except BatchDecodeError as exc:
            reasons = "; ".join(str(p) for p in exc.problems)
            unreadable[number] = f"not an event, a JSON array or NDJSON: {reasons}"
            continue
        except TooManyEvents as exc:
            unreadable[number] = f"more than gateway.max_batch_events: {exc}"
            continue
        combined.extend(batch)
        owner += [number] * batch.total
    return combined, owner, unreadable


class StreamRunner:
    """The loop for one stream, and what health and metrics show about it."""

    def __init__(self, gw: Any, name: str, consumer: StreamConsumer, max_in_flight: int) -> None:
        self.gw = gw
        self.name = name
        self.consumer = consumer
        self.max_in_flight = max_in_flight
        self.started = False
        self.last_error: str | None = None
        self.lag: dict[str, int] = {}
        self.lag_error: str | None = None
        self.committed_messages = 0
        self.dead_lettered = 0
        self.counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        self._stopping = asyncio.Event()
        self._stop_deadline: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stream {self.name}")

    async def stop(self) -> None:
        """Finish (or abandon, uncommitted) the batch in hand, then leave the group."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_S + FETCH_WAIT_S)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        with contextlib.suppress(Exception):
            await self.consumer.close()
        self.started = False

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                if not self.started:
                    await self.consumer.start()
                    self.started = True
                    log.info("stream consumer started", stream=self.name)
                batch = await self.consumer.fetch(self.max_in_flight, FETCH_WAIT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker or plugin trouble: back off, retry
                attempt += 1
                self._failed("stream consumer failed, retrying", exc, attempt)
                if not self.started:
                    with contextlib.suppress(Exception):
                        await self.consumer.close()
                await self._pause(BACKOFF.delay(attempt))
                continue
            try:
                if batch.messages:
                    await self._settle(batch)
                attempt, self.last_error = 0, None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the batch in hand is not settled
                # Rejoin from the committed offsets, so the messages of this batch come again
                # instead of being skipped by a later commit.
                attempt += 1
                self._failed("stream batch not settled, rejoining", exc, attempt)
                with contextlib.suppress(Exception):
                    await self.consumer.close()
                self.started = False
                await self._pause(BACKOFF.delay(attempt))

    async def _settle(self, batch: StreamBatch) -> None:
        """Store, dead-letter and commit one batch; returns once committed (or stopping)."""
        messages = list(batch.messages)
        combined, owner, unreadable = combine(messages, self.gw.settings.max_batch_events)
        counts, results = await self._store(combined)
        if counts is None:  # stopping while the store is down: leave it uncommitted
            return
        reasons = dict(unreadable)
        first: dict[int, int] = {}  # message -> its first index in the combined batch
        for index, number in enumerate(owner):
            first.setdefault(number, index)
        for result in results:
            if result.status == "rejected":
                number = owner[result.index]
                local = result.index - first[number]
                text = "; ".join(str(p) for p in result.problems)
                reasons.setdefault(number, "")
                if reasons[number].count(" | ") < MAX_REASONS:
                    sep = " | " if reasons[number] else ""
                    reasons[number] += f"{sep}event {local} ({result.event_id}): {text}"
        for number, reason in sorted(reasons.items()):
            message = messages[number]
            log.warning("stream message dead-lettered", stream=self.name, where=message.where)
            await self._until_done(lambda m=message, r=reason: batch.dead_letter(m, r))
            self.dead_lettered += 1
        await self._until_done(batch.commit)
        for outcome, n in counts.items():
            self.counts[outcome] += n
        self.committed_messages += len(messages)

    async def _store(self, combined: WireBatch) -> tuple[dict[str, int] | None, list[Verdict]]:
        from .ingest import store_batch

        if not combined.total:
            return {"accepted": 0, "duplicate": 0, "rejected": 0}, []
        attempt = 0
        while True:
            try:
                return await store_batch(self.gw, combined)
            except ApiError as exc:  # 503: the store is down
                attempt += 1
                self._failed("stream batch not stored, retrying", exc, attempt)
            if not await self._pause(BACKOFF.delay(attempt), grace=True):
                return None, []

    async def _until_done(self, call: Any) -> None:
        """Retry a broker call (dead letter, commit) with backoff until it succeeds.

        A commit the broker refuses for good (the partitions moved to another member) raises
        like any other failure; after the stop grace the batch is left uncommitted.
        """
        attempt = 0
        while True:
            try:
                await call()
                return
            except Exception as exc:  # retried; a batch left uncommitted comes again
                attempt += 1
                self._failed("stream settle failed, retrying", exc, attempt)
                if attempt >= 3 or not await self._pause(BACKOFF.delay(attempt), grace=True):
                    raise

    async def _pause(self, seconds: float, *, grace: bool = False) -> bool:
        """Sleep; False when stopping (with ``grace``: once STOP_GRACE_S has passed)."""
        if not grace:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
            return not self._stopping.is_set()
        if self._stopping.is_set():
            if self._stop_deadline is None:
                self._stop_deadline = time.monotonic() + STOP_GRACE_S
            if time.monotonic() + seconds > self._stop_deadline:
                return False
        await asyncio.sleep(seconds)
        return True

    def _failed(self, what: str, exc: BaseException, attempt: int) -> None:
        text = exc.message if isinstance(exc, ApiError) else describe(exc)
        self.last_error = text
        if attempt == 1:
            log.warning(what, stream=self.name, error=text)

    async def sample(self, timeout: float) -> Health:
        """Refresh the lag; the stream's health (not ok while failing or not started)."""
        if self.started:
            try:
                async with asyncio.timeout(timeout):
                    self.lag = await self.consumer.lag()
                self.lag_error = None
            except Exception as exc:  # noqa: BLE001 - health must not raise
                self.lag_error = describe(exc)
        if not self.started:
            return Health(False, self.last_error or "not started")
        if self.last_error:
            return Health(False, self.last_error)
        return Health(True, self.lag_error or "")

    def report(self, health: Health) -> StreamCheck:
        """What /v1/healthz shows for this stream."""
        return StreamCheck(
            type=type(self.consumer).__name__,
            ok=health.ok,
            detail=health.detail,
            lag=dict(self.lag),
            lag_total=sum(self.lag.values()),
            committed_messages=self.committed_messages,
            dead_lettered=self.dead_lettered,
            events=dict(self.counts),
        )


class StreamCollector:
    """/metrics for every stream: lag per partition (as last sampled), events by outcome,
    dead letters, committed messages, and whether the consumer runs without errors."""

    def __init__(self, runners: dict[str, StreamRunner]) -> None:
        self.runners = runners

    def collect(self) -> Any:
        lag = GaugeMetricFamily(
            "wafermon_gateway_stream_lag",
            "Messages not yet committed, per stream and partition/consumer (this member's).",
            labels=["stream", "partition"],
        )
        up = GaugeMetricFamily(
            "wafermon_gateway_stream_up",
            "1 while the stream consumer runs without errors, else 0.",
            labels=["stream"],
        )
        events = CounterMetricFamily(
            "wafermon_gateway_stream_events",
            "Events read from a stream, by outcome (accepted, duplicate, rejected).",
            labels=["stream", "outcome"],
        )
        committed = CounterMetricFamily(
            "wafermon_gateway_stream_committed_messages",
            "Stream messages stored (or dead-lettered) and committed.",
            labels=["stream"],
        )
        dead = CounterMetricFamily(
            "wafermon_gateway_stream_dead_letters",
            "Stream messages sent to the dead-letter destination.",
            labels=["stream"],
        )
        for name, runner in self.runners.items():
            for partition, value in sorted(runner.lag.items()):
                lag.add_metric([name, partition], value)
            up.add_metric([name], 1 if runner.started and not runner.last_error else 0)
            for outcome, n in runner.counts.items():
                events.add_metric([name, outcome], n)
            committed.add_metric([name], runner.committed_messages)
            dead.add_metric([name], runner.dead_lettered)
        return [lag, up, events, committed, dead]
