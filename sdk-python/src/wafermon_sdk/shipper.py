"""The background shipper: the only thread that encodes, sends, retries and spools.

Callers append records to a bounded in-process queue (a ``collections.deque``: appending is
one atomic C call, so a caller never takes a lock or waits on the network) and set ``wake``
when a batch is ready. The shipper thread drains the queue into batches, encodes them (see
``wire``), and delivers each batch to every sink:

- a sink that takes it is done; one that fails is retried with exponential backoff and full
  jitter (``max_retries``, Retry-After honoured), then the batch goes to the disk spool;
- while a sink has spooled records, new batches are spooled too and that sink is fed from the
  spool only, oldest first, every ``replay_interval`` until it is caught up: per sink, events
  arrive in the order they were emitted;
- events a sink refuses for good (invalid for it) are counted as ``rejected`` and logged.

Every event handed to the SDK ends up sent, spooled, rejected (logged) or dropped (counted and
logged): nothing is lost silently. This module must never block a caller on I/O, except the
``spool`` queue-full policy, which writes the caller's overflow to local disk by design.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from wafermon import Event
from wafermon.errors import retry_delay
from wafermon.spool import SpoolFull

from . import spooling, wire
from .config import Settings
from .sinks import Sink, Unavailable, refused_lines

log = logging.getLogger("wafermon_sdk")

#: What the caller's thread queues (see ``wire.encode``).
Record = wire.Lifecycle | Event | dict[str, Any]


class Flush(NamedTuple):
    """A marker in the queue: ``flush()`` waits on ``done``; ``result`` gets whether all of
    what was queued before it is delivered."""

    done: threading.Event
    result: list[bool]


REPLAY_READ_BYTES = 1 << 20
WARN_EVERY_S = 10.0
#: Set by ``client``: closes every client. Registered as a multiprocessing finalizer whenever
#: a shipper starts, because multiprocessing children end with os._exit (no atexit) and clear
#: the finalizers registered before their target runs.
at_process_end: Callable[[], None] | None = None


def _register_process_end() -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None and at_process_end is not None:
        util.Finalize(None, at_process_end, exitpriority=100)


class RateLimitedWarning:
    """Logs at most one warning per ``every`` seconds, with how many were held back."""

    def __init__(self, every: float = WARN_EVERY_S) -> None:
        self.every = every
        self.next_at = 0.0
        self.held = 0
        self.lock = threading.Lock()

    def warn(self, message: str, *args: Any) -> None:
        with self.lock:
            now = time.monotonic()
            if now < self.next_at:
                self.held += 1
                return
            held, self.held, self.next_at = self.held, 0, now + self.every
        suffix = f" ({held} similar warnings held back)" if held else ""
        log.warning("wafermon-sdk: " + message + suffix, *args)


def _print_events(lines: list[bytes]) -> None:
    """Console mode: each event's wire JSON on stderr as it is sent, one line each, like
    OpenTelemetry's console exporter; for seeing what a program reports while writing it."""
    out = sys.stderr
    for line in lines:
        out.write("wafermon-sdk: send " + line.decode("utf-8", "replace").rstrip("\n") + "\n")
    out.flush()


class SinkState:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0
        self.retries = 0
        self.rejected = 0
        self.last_error: str | None = None
        self.next_replay = 0.0


class Shipper:
    """The queue and the thread that empties it. Made per client and again after fork."""

    def __init__(
        self,
        settings: Settings,
        make_sinks: Callable[[asyncio.AbstractEventLoop], list[Sink]],
        sink_names: Sequence[str],
    ) -> None:
        self.settings = settings
        self.make_sinks = make_sinks
        self.sink_names = list(sink_names)
        self.queue: collections.deque = collections.deque()
        self._queue_size = settings.queue_size
        self._batch_size = settings.batch_size - 1
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.states = {name: SinkState(name) for name in self.sink_names}
        self.popped = 0
        self.spooled = 0
        self.replayed = 0
        self.dropped = 0
        self.rejected = 0
        self.metadata_truncated = 0
        self.last_error: str | None = None
        self.thread: threading.Thread | None = None
        self.own: spooling.SpoolDir | None = None
        self.orphans: list[spooling.SpoolDir] = []
        self.sinks: list[Sink] = []
        self.drop_warning = RateLimitedWarning()
        self.reject_warning = RateLimitedWarning()
        self.retry_warning = RateLimitedWarning()
        self._start_lock = threading.Lock()
        self._spool_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._random = random.Random()

    # -- caller side ----------------------------------------------------------------------------

    def ensure_started(self) -> None:
        if self.thread is None:
            with self._start_lock:
                if self.thread is None and not self.stopping.is_set():
                    thread = threading.Thread(
                        target=self._run, name="wafermon-sdk-shipper", daemon=True
                    )
                    thread.start()
                    self.thread = thread
                    _register_process_end()

    def put(self, record: Record) -> bool:
        """Queue one record (the hot path); False if it was dropped (counted, logged)."""
        queue = self.queue
        size = len(queue)
        if size < self._queue_size:
            queue.append(record)
            if size >= self._batch_size and not self.wake.is_set():
                self.wake.set()
            if self.thread is None:
                self.ensure_started()
            return True
        return self._full(record)

    def _full(self, record: Record) -> bool:
        self.ensure_started()
        self.wake.set()
        policy = self.settings.queue_full
        if policy == "block":
            deadline = time.monotonic() + self.settings.block_timeout
            while time.monotonic() < deadline:
                time.sleep(0.001)
                if len(self.queue) < self.settings.queue_size:
                    self.queue.append(record)
                    return True
        elif policy == "spool":
            try:
                line, _cut = wire.encode(record)
                self._spool([line])
                self.wake.set()
                return True
            except wire.Rejected as exc:
                self._reject_record(str(exc))
                return False
            except (SpoolFull, OSError) as exc:
                self._drop(f"queue full and spool refused: {exc}")
                return False
        self._drop(f"queue full ({self.settings.queue_size} events, policy {policy})")
        return False

    def spool_dirs_on_disk(self) -> bool:
        """Whether ``spool_dir`` holds a process's spool (maybe one left to replay)."""
        try:
            with os.scandir(self.settings.spool_dir) as entries:
                return any(e.is_dir() and not e.name.startswith(".") for e in entries)
        except OSError:
            return False

    def _drop(self, why: str) -> None:
        with self._count_lock:
            self.dropped += 1
            total = self.dropped
            self.last_error = f"dropped: {why}"
        self.drop_warning.warn("dropped an event: %s; %d dropped so far", why, total)

    def flush(self, timeout: float | None, *, closing: bool = False) -> bool:
        """Wait until everything queued before now is delivered or spooled (True: delivered
        and nothing left in the spool). ``closing``: no more retries, spool what fails."""
        if self.thread is None and not self.queue and not self.spool_dirs_on_disk():
            return True
        self.ensure_started()
        if self.thread is None or not self.thread.is_alive():
            return False
        done = threading.Event()
        result: list[bool] = []
        self.queue.append(Flush(done, result))
        if closing:  # after the marker: the thread only stops once it has handled it
            self.stopping.set()
        self.wake.set()
        if not done.wait(timeout):
            return False
        return bool(result and result[0])

    def close(self, timeout: float | None) -> bool:
        """Flush without waiting out retries (what fails goes to the disk spool), stop the
        thread, close sinks and spools. Spooled records stay on disk for the next process."""
        delivered = self.flush(timeout, closing=True) if self.thread is not None else True
        self.stopping.set()
        self.wake.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return delivered

    # -- shipper thread -------------------------------------------------------------------------

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self.sinks = self.make_sinks(self._loop)
            self._adopt()
            while True:
                self.wake.wait(self._wait_time())
                self.wake.clear()
                self._drain()
                self._replay(force=False)
                if self.stopping.is_set() and not self.queue:
                    break
        except BaseException as exc:  # keep the reason: callers see it in stats
            self.last_error = f"shipper stopped: {type(exc).__name__}: {exc}"
            log.exception("wafermon-sdk: the shipper thread failed")
            self._release_flushes()
        finally:
            self._teardown()

    def _wait_time(self) -> float:
        wait = self.settings.flush_interval
        due = [
            self.states[s.name].next_replay
            for s in self.sinks
            if self.orphans or self._lagging(s.name)
        ]
        if due:
            wait = max(0.01, min(wait, min(due) - time.monotonic()))
        return wait

    def _drain(self) -> None:
        lines: list[bytes] = []
        queue, batch_size = self.queue, self.settings.batch_size
        while queue:
            record = queue.popleft()
            if type(record) is Flush:
                if lines:
                    self._deliver(lines)
                    lines = []
                self._replay(force=True)
                record.result.append(not self._lagging_any())
                record.done.set()
                continue
            self.popped += 1
            try:
                line, cut = wire.encode(record)
            except wire.Rejected as exc:
                self._reject_record(str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - an encoding bug must not stop the shipper
                self._reject_record(f"cannot encode: {type(exc).__name__}: {exc}")
                continue
            if cut:
                self.metadata_truncated += 1
            lines.append(line)
            if len(lines) >= batch_size:
                self._deliver(lines)
                lines = []
        if lines:
            self._deliver(lines)

    def _release_flushes(self) -> None:
        while self.queue:
            record = self.queue.popleft()
            if type(record) is Flush:
                record.result.append(False)
                record.done.set()

    def _reject_record(self, why: str) -> None:
        with self._count_lock:
            self.rejected += 1
            self.last_error = f"rejected: {why}"
        self.reject_warning.warn("an event was rejected and not sent: %s", why)

    # -- delivery -------------------------------------------------------------------------------

    def _lagging(self, name: str) -> bool:
        return self.own is not None and self.own.lag(name) > 0

    def _lagging_any(self) -> bool:
        return any(self._lagging(s.name) for s in self.sinks) or bool(self.orphans)

    def _deliver(self, lines: list[bytes]) -> None:
        """Send one batch to every sink that is caught up; spool it for the others."""
        if self.settings.console:
            _print_events(lines)
        lagging = [s for s in self.sinks if self._lagging(s.name)]
        seq = self._spool(lines) if lagging else None
        failed = []
        for sink in self.sinks:
            if sink in lagging:
                continue
            if self._send_with_retries(sink, lines):
                if seq is not None:
                    self._ack_if_next(sink.name, seq)
            else:
                failed.append(sink)
        if failed and seq is None:
            seq = self._spool(lines)
            for sink in self.sinks:
                if sink not in failed and seq is not None:
                    self._ack_if_next(sink.name, seq)
        if failed:
            for sink in failed:
                self.states[sink.name].next_replay = (
                    time.monotonic() + self.settings.replay_interval
                )

    def _ack_if_next(self, name: str, seq: int) -> None:
        """Acknowledge ``seq`` for a sink that got it directly, if it had everything before it."""
        own = self.own
        if own is not None and own.spool.acked[name] == seq - 1:
            own.spool.ack(name, seq)

    def _send_with_retries(self, sink: Sink, lines: list[bytes]) -> bool:
        state = self.states[sink.name]
        attempt = 0
        while True:
            try:
                refusals = sink.send(lines)
            except Unavailable as exc:
                state.last_error = self.last_error = str(exc)
                out_of_tries = (
                    not self.settings.enable_retries
                    or attempt >= self.settings.max_retries
                    or self.stopping.is_set()
                )
                if out_of_tries:
                    self.retry_warning.warn("%s; spooling to disk and retrying later", exc)
                    return False
                state.retries += 1
                delay = self._backoff(attempt, exc.retry_after)
                attempt += 1
                if self.stopping.wait(delay):
                    return self._send_once(sink, lines)
                continue
            self._count_sent(state, lines, refusals)
            return True

    def _send_once(self, sink: Sink, lines: list[bytes]) -> bool:
        try:
            refusals = sink.send(lines)
        except Unavailable as exc:
            self.states[sink.name].last_error = self.last_error = str(exc)
            return False
        self._count_sent(self.states[sink.name], lines, refusals)
        return True

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        return retry_delay(
            attempt + 1,
            base_s=self.settings.retry_base_delay,
            max_s=self.settings.retry_max_delay,
            retry_after=retry_after,
            rng=self._random,
        )

    def _count_sent(self, state: SinkState, lines: Sequence[bytes], refusals: list) -> None:
        state.sent += len(lines) - len(refusals)
        if refusals:
            state.rejected += len(refusals)
            with self._count_lock:
                self.rejected += len(refusals)
                first_id, first_why = refused_lines(lines, refusals[:1])[0]
                self.last_error = f"{state.name} rejected event {first_id}: {first_why}"
            for event_id, why in refused_lines(lines, refusals[:5]):
                self.reject_warning.warn("%s rejected event %s: %s", state.name, event_id, why)

    # -- the spool ------------------------------------------------------------------------------

    def _open_own(self) -> spooling.SpoolDir:
        with self._spool_lock:
            if self.own is None:
                self.own = spooling.open_own(
                    Path(self.settings.spool_dir), self.sink_names, self.settings.spool_max_bytes
                )
            return self.own

    def _spool(self, lines: list[bytes]) -> int | None:
        """Append a batch to this process's spool; its seq, or None if it had to be dropped."""
        try:
            seq = self._open_own().spool.append(b"".join(lines))
        except (SpoolFull, OSError) as exc:
            with self._count_lock:
                self.dropped += len(lines)
                self.last_error = f"dropped {len(lines)} events: the disk spool refused them: {exc}"
            self.drop_warning.warn("%s", self.last_error)
            return None
        with self._count_lock:
            self.spooled += len(lines)
        return seq

    def _adopt(self) -> None:
        root = Path(self.settings.spool_dir)
        if root.is_dir():
            self.orphans = spooling.adopt_orphans(
                root, self.sink_names, self.settings.spool_max_bytes, None
            )

    def _replay(self, *, force: bool) -> None:
        """Feed lagging sinks from the spools, oldest first, while they take it."""
        if not self._lagging_any():
            return
        now = time.monotonic()
        for sink in self.sinks:
            state = self.states[sink.name]
            if not force and now < state.next_replay:
                continue
            ok = True
            for spool_dir in [*self.orphans, *([self.own] if self.own is not None else [])]:
                ok = self._replay_one(sink, spool_dir)
                if not ok:
                    break
            if not ok:
                state.next_replay = time.monotonic() + self.settings.replay_interval
        for orphan in list(self.orphans):
            if orphan.drained():
                orphan.close(remove_if_drained=True)
                self.orphans.remove(orphan)

    def _replay_one(self, sink: Sink, spool_dir: spooling.SpoolDir) -> bool:
        spool = spool_dir.spool
        while spool_dir.lag(sink.name) > 0:
            records = spool.read(spool.acked[sink.name], REPLAY_READ_BYTES)
            if not records:
                return True
            lines = [
                line + b"\n" for _seq, payload in records for line in payload.splitlines() if line
            ]
            if not self._send_once(sink, lines):
                return False
            spool.ack(sink.name, records[-1][0])
            self.replayed += len(lines)
        return True

    def _teardown(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # closing is best effort
                log.debug("wafermon-sdk: closing sink %s failed", sink.name, exc_info=True)
        if self._loop is not None:
            self._loop.close()
        with self._spool_lock:
            for spool_dir in [*self.orphans, *([self.own] if self.own is not None else [])]:
                if self._lagging_dir(spool_dir):
                    log.warning(
                        "wafermon-sdk: %s keeps undelivered events; the next SDK process with "
                        "spool_dir %s replays them",
                        spool_dir.path,
                        self.settings.spool_dir,
                    )
                spool_dir.close(remove_if_drained=True)
            self.orphans = []
            self.own = None

    @staticmethod
    def _lagging_dir(spool_dir: spooling.SpoolDir) -> bool:
        return not spool_dir.drained()

    # -- after fork, in the child ---------------------------------------------------------------

    def abandon(self) -> None:
        """Forget the parent's thread, queue and spool without touching them (child side)."""
        for spool_dir in [*self.orphans, *([self.own] if self.own is not None else [])]:
            spool_dir.abandon()

    # -- figures --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        pending = sum(1 for r in list(self.queue) if type(r) is not Flush)
        sent = min((s.sent for s in self.states.values()), default=0)
        own = self.own
        return {
            "queued": self.popped + pending,
            "pending": pending,
            "sent": sent,
            "spooled": self.spooled,
            "replayed": self.replayed,
            "spool_lag": max((own.lag(n) for n in self.sink_names), default=0) if own else 0,
            "orphan_spools": len(self.orphans),
            "dropped": self.dropped,
            "rejected": self.rejected,
            "metadata_truncated": self.metadata_truncated,
            "retries": sum(s.retries for s in self.states.values()),
            "last_error": self.last_error,
            "sinks": {
                s.name: {
                    "sent": s.sent,
                    "retries": s.retries,
                    "rejected": s.rejected,
                    "last_error": s.last_error,
                }
                for s in self.states.values()
            },
        }
