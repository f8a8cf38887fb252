"""The router: every backend gets every record; failures are retried, rejected or dead-lettered.

The backends here are real Emitter subclasses with real behaviour (wafermon.testing's
RecordingEmitter collects and fails N times; reject, hang); nothing is mocked. Timings are
kept short through the RetryPolicy.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import attrs
import orjson
import pytest

from wafermon import App, Emitter, Entity, Event, PermanentError, RetryableError, encode_ndjson
from wafermon.batch import EventBatch
from wafermon.router import Breaker, RetryPolicy, Route, Router
from wafermon.spool import Spool
from wafermon.testing import RecordingEmitter
from wafermon.wire import read_batch

FAST = RetryPolicy(
    timeout_s=0.5, base_delay_s=0.01, max_delay_s=0.05, failure_threshold=3, open_seconds=0.1
)
T0 = datetime(2026, 11, 28, tzinfo=UTC)


def make_events(n: int) -> list[Event]:
    return [
        Event(
            event_id=uuid4(),
            kind="started",
            time=T0 + timedelta(seconds=i),
            site_id="fab1",
            app=App(name="etch"),
            entity=Entity(type="job", id=f"j{i}"),
        )
        for i in range(n)
    ]


class Reject(Emitter):
    """Refuses every event whose entity id is in ``bad``, permanently."""

    def __init__(self, name, bad=None):
        super().__init__(name, None)
        self.bad = bad
        self.got: list[Event] = []

    async def emit(self, batch):
        bad = [e.event_id for e in batch if self.bad is None or e.entity.id in self.bad]
        self.got.extend(e for e in batch if e.event_id not in bad)
        if bad:
            raise PermanentError("schema mismatch", None if self.bad is None else bad)


class Hang(Emitter):
    async def emit(self, batch):
        await asyncio.sleep(3600)


async def run_until(router: Router, condition, timeout: float = 10.0) -> None:
    router.start()
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    finally:
        await router.stop()


def fill(spool: Spool, events: list[Event], per_record: int = 10) -> None:
    for i in range(0, len(events), per_record):
        spool.append(encode_ndjson(events[i : i + per_record]))


async def test_every_backend_gets_every_event_once_and_segments_are_freed(tmp_path):
    spool = Spool(tmp_path / "spool", ["a", "b"], segment_bytes=2000)
    events = make_events(200)
    fill(spool, events)
    a, b = RecordingEmitter("a"), RecordingEmitter("b")
    router = Router(
        spool, [Route("a", a), Route("b", b)], dead_letter_dir=tmp_path / "dl", policy=FAST
    )
    await run_until(router, lambda: router.lag("a") == router.lag("b") == 0)
    assert a.events == events
    assert b.events == events
    assert len(list((tmp_path / "spool").glob("seg-*.wal"))) == 1  # acked segments deleted
    assert Spool(tmp_path / "spool", ["a", "b"]).acked == {"a": 20, "b": 20}


async def test_a_dead_backend_stalls_nobody_and_its_circuit_opens(tmp_path):
    spool = Spool(tmp_path / "spool", ["ok", "dead"])
    events = make_events(50)
    fill(spool, events)
    ok, dead = RecordingEmitter("ok"), RecordingEmitter("dead", fail_times=10**9)
    router = Router(
        spool, [Route("ok", ok), Route("dead", dead)], dead_letter_dir=tmp_path / "dl", policy=FAST
    )
    await run_until(router, lambda: router.lag("ok") == 0 and router.states["dead"].retries > 5)
    assert ok.events == events
    state = router.states["dead"]
    assert state.breaker in (Breaker.OPEN, Breaker.HALF_OPEN)
    assert "retryable: dead is down" in state.last_error
    assert router.lag("dead") == 5  # nothing given up: all 5 records still owed
    assert len(router._decoded) <= 256


async def test_outage_then_recovery_delivers_everything(tmp_path):
    spool = Spool(tmp_path / "spool", ["flaky"])
    events = make_events(30)
    fill(spool, events)
    flaky = RecordingEmitter("flaky", fail_times=6)  # opens the breaker, then recovers
    router = Router(spool, [Route("flaky", flaky)], dead_letter_dir=tmp_path / "dl", policy=FAST)
    await run_until(router, lambda: router.lag("flaky") == 0)
    assert flaky.events == events
    assert router.states["flaky"].breaker is Breaker.CLOSED
    assert router.states["flaky"].retries == 6


async def test_timeouts_are_retried(tmp_path):
    spool = Spool(tmp_path / "spool", ["slow"])
    fill(spool, make_events(5))
    router = Router(
        spool, [Route("slow", Hang("slow", None))], dead_letter_dir=tmp_path / "dl", policy=FAST
    )
    await run_until(router, lambda: router.states["slow"].retries >= 2)
    assert router.states["slow"].last_error == "retryable: timed out"


async def test_permanent_rejects_go_to_the_fallback(tmp_path):
    spool = Spool(tmp_path / "spool", ["primary"])
    events = make_events(20)
    fill(spool, events)
    primary, backup = Reject("primary", bad={"j3", "j17"}), RecordingEmitter("backup")
    router = Router(
        spool,
        [Route("primary", primary, fallback=backup)],
        dead_letter_dir=tmp_path / "dl",
        policy=FAST,
    )
    await run_until(router, lambda: router.lag("primary") == 0)
    assert [e.entity.id for e in backup.events] == ["j3", "j17"]
    assert len(primary.got) == 18
    assert router.states["primary"].fallback_events == 2
    assert not (tmp_path / "dl").exists()


async def test_permanent_rejects_without_fallback_are_dead_lettered_with_the_reason(tmp_path):
    spool = Spool(tmp_path / "spool", ["picky"])
    events = make_events(4)
    fill(spool, events, per_record=4)
    router = Router(
        spool, [Route("picky", Reject("picky"))], dead_letter_dir=tmp_path / "dl", policy=FAST
    )
    await run_until(router, lambda: router.lag("picky") == 0)
    lines = [
        orjson.loads(line) for line in (tmp_path / "dl" / "picky.jsonl").read_bytes().splitlines()
    ]
    assert [line["event"]["event_id"] for line in lines] == [str(e.event_id) for e in events]
    assert lines[0]["reason"] == "schema mismatch"
    assert router.states["picky"].dead_lettered_events == 4


async def test_a_restarted_router_resumes_from_the_acknowledged_position(tmp_path):
    spool = Spool(tmp_path / "spool", ["a"])
    events = make_events(40)
    fill(spool, events[:20])
    first = RecordingEmitter("a")
    router = Router(spool, [Route("a", first)], dead_letter_dir=tmp_path / "dl", policy=FAST)
    await run_until(router, lambda: router.lag("a") == 0)
    fill(spool, events[20:])
    spool.close()
    reopened = Spool(tmp_path / "spool", ["a"])
    second = RecordingEmitter("a")
    router = Router(reopened, [Route("a", second)], dead_letter_dir=tmp_path / "dl", policy=FAST)
    await run_until(router, lambda: router.lag("a") == 0)
    assert first.events == events[:20]
    assert second.events == events[20:]


async def test_notify_wakes_an_idle_loop_at_once(tmp_path):
    spool = Spool(tmp_path / "spool", ["a"])
    a = RecordingEmitter("a")
    router = Router(spool, [Route("a", a)], dead_letter_dir=tmp_path / "dl", policy=FAST, poll_s=60)
    router.start()
    try:
        await asyncio.sleep(0.05)
        fill(spool, make_events(3))
        router.notify()
        async with asyncio.timeout(5):  # far less than the 60 s poll
            while router.lag("a"):
                await asyncio.sleep(0.01)
    finally:
        await router.stop()
    assert len(a.events) == 3


def with_a_dead_backend(spool: Spool, tmp_path, **options) -> tuple[Router, RecordingEmitter]:
    """A router to "ok" and to "dead" (which always fails), and the "ok" emitter."""
    ok, dead = RecordingEmitter("ok"), RecordingEmitter("dead", fail_times=10**9)
    routes = [Route("ok", ok), Route("dead", dead)]
    router = Router(spool, routes, dead_letter_dir=tmp_path / "dl", policy=FAST, **options)
    return router, ok


async def trickle(router: Router, spool: Spool, backend: str = "a", records: int = 6) -> None:
    """Append single-event records one by one, each announced, 50 ms apart; wait until
    ``backend`` has them all."""
    for _ in range(records):
        fill(spool, make_events(1))
        router.notify()
        await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        while router.lag(backend):
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("linger_s", [0.0, 0.6])
async def test_records_trickling_in_gather_while_a_loop_lingers(tmp_path, linger_s):
    spool = Spool(tmp_path / "spool", ["a"])
    a = RecordingEmitter("a")
    router = Router(
        spool, [Route("a", a)], dead_letter_dir=tmp_path / "dl", policy=FAST, linger_s=linger_s
    )
    router.start()
    try:
        await trickle(router, spool)
    finally:
        await router.stop()
    assert len(a.events) == 6
    if linger_s:
        assert a.calls <= 2  # the first at once, the other five together after the linger
    else:
        assert a.calls >= 4  # about each as it came


async def test_no_loop_lingers_while_the_spool_is_half_full(tmp_path):
    """A backend that is down ("b") keeps the spool full: "a" must then take each record at
    once, or producers would be refused while it waits."""
    spool = Spool(tmp_path / "spool", ["ok", "dead"], max_bytes=6_000, segment_bytes=1_000)
    fill(spool, make_events(20), per_record=1)
    assert spool.size > spool.max_bytes // 2
    router, ok = with_a_dead_backend(spool, tmp_path, linger_s=0.6)
    router.start()
    try:
        async with asyncio.timeout(5):
            while router.lag("ok"):
                await asyncio.sleep(0.01)
        calls = ok.calls
        await trickle(router, spool, "ok")
    finally:
        await router.stop()
    assert len(ok.events) == 26
    assert ok.calls - calls >= 4  # about one each: no 0.6 s linger between them


async def test_remembered_events_are_delivered_without_decoding_the_record_again(tmp_path):
    spool = Spool(tmp_path / "spool", ["a"])
    events = make_events(5)
    seq = spool.append(encode_ndjson(events))
    a = RecordingEmitter("a")
    router = Router(spool, [Route("a", a)], dead_letter_dir=tmp_path / "dl", policy=FAST)
    router.remember(seq, events)
    await run_until(router, lambda: router.lag("a") == 0)
    assert all(got is sent for got, sent in zip(a.events, events, strict=True))  # the same objects


async def test_a_remembered_body_is_kept_as_its_bytes_not_its_wire_structs(tmp_path):
    spool = Spool(tmp_path / "spool", ["a"])
    events = make_events(5)
    body = encode_ndjson(events)
    read = read_batch(body)
    record = EventBatch(ndjson=read.ndjson(), count=len(read.events), wire=read.events)
    seq = spool.append(record.ndjson)
    a = RecordingEmitter("a")
    router = Router(spool, [Route("a", a)], dead_letter_dir=tmp_path / "dl", policy=FAST)
    router.remember(seq, record)
    kept = router._decoded[seq]
    assert kept._wire is None
    assert not kept.decoded
    assert kept.ndjson == body
    assert len(kept) == 5
    await run_until(router, lambda: router.lag("a") == 0)
    assert a.events == events  # decoded again from the bytes, equal to what was sent


async def test_decoded_records_kept_for_a_dead_backend_are_bounded_by_events(tmp_path):
    spool = Spool(tmp_path / "spool", ["ok", "dead"])
    fill(spool, make_events(400), per_record=50)  # 8 records
    router, ok = with_a_dead_backend(spool, tmp_path, max_decoded_events=120)
    cached = []

    def done() -> bool:
        cached.append(sum(len(v) for v in router._decoded.values()))
        return router.lag("ok") == 0 and router.states["dead"].retries > 3

    await run_until(router, done)
    assert len(ok.events) == 400
    assert max(cached) <= 120  # never more than the bound (records hold 50 events each)


async def test_a_failing_spool_read_does_not_end_a_backends_loop(tmp_path):
    spool = Spool(tmp_path / "spool", ["a"])
    fill(spool, make_events(20))
    real_read, failures = spool.read, []

    def read(*args, **kwargs):
        if len(failures) < 2:
            failures.append(1)
            raise OSError(5, "Input/output error")
        return real_read(*args, **kwargs)

    spool.read = read
    a = RecordingEmitter("a")
    router = Router(
        spool, [Route("a", a)], dead_letter_dir=tmp_path / "dl", policy=FAST, loop_retry_s=0.01
    )
    seen_errors = []

    def done() -> bool:
        seen_errors.append(router.states["a"].last_error)
        return router.lag("a") == 0

    await run_until(router, done)
    assert len(a.events) == 20
    assert any(
        "delivery loop failed: OSError: [Errno 5] Input/output error" in (e or "")
        for e in seen_errors
    )


class SwallowsOneCancel(Emitter):
    """Turns the first cancellation into a failure, as a call that finishes just as the
    cancellation lands does (Python 3.11's wait_for returns the result then)."""

    def __init__(self, name):
        super().__init__(name, None)
        self.swallowed = 0

    async def emit(self, batch):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1
            raise RetryableError("interrupted") from None


async def test_stop_ends_a_loop_that_lost_its_cancellation(tmp_path):
    spool = Spool(tmp_path / "spool", ["slow"])
    fill(spool, make_events(3))
    slow = SwallowsOneCancel("slow")
    router = Router(spool, [Route("slow", slow)], dead_letter_dir=tmp_path / "dl", policy=FAST)
    router.start()
    await asyncio.sleep(0.1)  # the loop is inside emit
    async with asyncio.timeout(10):
        await router.stop()
    assert slow.swallowed == 1
    assert all(t.done() for t in router._tasks)


@pytest.mark.parametrize(
    ("fallback", "message"),
    [
        ("backup", None),
        ("primary", "cannot be its own fallback"),
        ("nope", "names 'nope', which is not an enabled backend"),
    ],
)
def test_config_checks_fallback_names(tmp_path, fallback, message):
    from wafermon import ConfigError
    from wafermon.config import load_config

    path = tmp_path / "site.yaml"
    path.write_text(
        "site_id: fab1\nbackends:\n"
        f"  - {{name: primary, type: x, fallback: {fallback}}}\n"
        "  - {name: backup, type: y}\n"
    )
    if message is None:
        assert load_config(path, {}).site.backends[0].fallback == "backup"
    else:
        with pytest.raises(ConfigError, match=message):
            load_config(path, {})


class Buggy(Emitter):
    """A third-party emitter with a bug: raises KeyError while ``broken`` is set."""

    def __init__(self, name):
        super().__init__(name, None)
        self.broken = True
        self.got: list[Event] = []

    async def emit(self, batch):
        if self.broken:
            return {}["missing_setting"]  # raises KeyError from this line
        self.got.extend(batch)
        return None


async def wait_for(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_plugins_emit_exception_is_logged_once_per_streak_with_class_and_traceback(
    tmp_path, caplog
):
    spool = Spool(tmp_path / "spool", ["buggy"])
    fill(spool, make_events(10))
    buggy = Buggy("buggy")
    patient = attrs.evolve(FAST, failure_threshold=1000)  # the breaker stays closed
    router = Router(spool, [Route("buggy", buggy)], dead_letter_dir=tmp_path / "dl", policy=patient)
    state = router.states["buggy"]
    caplog.set_level("INFO", logger="wafermon.router")

    def warnings():
        return [r for r in caplog.records if r.levelname == "WARNING"]

    router.start()
    try:
        await wait_for(lambda: state.retries >= 5)
        assert state.breaker is Breaker.CLOSED
        assert state.consecutive_failures >= 5  # what health reads: degraded already
        assert state.last_error == "unexpected: KeyError: 'missing_setting'"
        assert len(warnings()) == 1, [r.getMessage() for r in warnings()]  # not per retry
        record = warnings()[0]
        assert record.getMessage() == (
            "backend buggy: emit failed (KeyError), retrying: KeyError: 'missing_setting'"
        )
        assert record.exc_info[0] is KeyError
        assert 'return {}["missing_setting"]' in caplog.text  # the plugin's own line
        buggy.broken = False
        await wait_for(lambda: router.lag("buggy") == 0)
        assert state.consecutive_failures == 0
        buggy.broken = True  # a second streak gets its own warning
        fill(spool, make_events(10))
        router.notify()
        await wait_for(lambda: state.consecutive_failures >= 3)
        assert len(warnings()) == 2
    finally:
        await router.stop()
