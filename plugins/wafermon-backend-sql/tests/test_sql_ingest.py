"""Ingest: idempotency, entity state by the core's merge rules, concurrency, errors."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wafermon import (
    App,
    Entity,
    ErrorInfo,
    Event,
    Metrics,
    PermanentError,
    Query,
    encode_ndjson,
    wire,
)
from wafermon.store import fold
from wafermon.wire import WireBatch, read_batch
from wafermon_backend_sql.dialects import _wire_time, sqlite_time

#: Recent, like conftest's clock: PostgreSQL then routes into real daily partitions.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


@pytest.fixture(params=["ingest", "ingest_wire"])
def put(request):
    """``await put(store, events)``: through ``ingest``, or through ``ingest_wire`` with the
    wire events and lines the fast decoder makes of the events' JSON (the gateway's way)."""
    if request.param == "ingest":
        return lambda store, events: store.ingest(events)

    def ingest_wire(store, events):
        batch = read_batch(encode_ndjson(events)) if events else WireBatch()
        assert not batch.rejected
        return store.ingest_wire(batch.events, batch.lines)

    return ingest_wire


async def _all_events(store, **filters):
    return (await store.query(Query(limit=10_000, **filters))).events


async def test_ingest_says_which_events_are_new(put, store, make_event):
    a, b, c = (make_event(entity_id="j1") for _ in range(3))
    assert await put(store, [a, b]) == [True, True]
    assert await put(store, [b, c, a]) == [False, True, False]
    assert await put(store, []) == []
    assert sorted(e.event_id for e in await _all_events(store)) == sorted(
        e.event_id for e in (a, b, c)
    )


async def test_duplicates_inside_a_batch_count_once(put, store, make_event):
    a, b = make_event(entity_id="j1"), make_event(entity_id="j1", kind="finished")
    assert await put(store, [a, a, b, a, b]) == [True, False, True, False, False]
    assert len(await _all_events(store)) == 2
    detail = await store.job_detail("j1")
    assert detail.job.event_count == 2
    assert detail.job == fold([a, b])["j1"]


async def test_duplicate_with_another_time_is_still_a_duplicate(put, store, make_event, t0):
    """On PostgreSQL the two times fall in different daily partitions: the gate still holds."""
    first = make_event(entity_id="j1", time=t0)
    moved = attrs.evolve(first, time=t0 - timedelta(days=1))
    later = attrs.evolve(first, time=t0 + timedelta(days=1), kind="finished")
    assert await put(store, [first]) == [True]
    assert await put(store, [moved, later]) == [False, False]
    (stored,) = await _all_events(store)
    assert stored == first
    assert (await store.job_detail("j1")).job.event_count == 1


async def test_events_come_back_exactly(put, store, make_event):
    event = make_event(
        app_version="2.1",
        business_key="LOT-7",
        sub_key="W03",
        kind="failed",
        metrics=Metrics(duration_s=1.5, cpu_user_s=0.25, mem_max_mb=512, progress=1),
        metadata={"recipe": "R1", "nested": {"a": [1, 2.5, None, "\u0000x"]}, "ü": "∆"},
    )
    await put(store, [event])
    assert await _all_events(store) == [event]
    # The job row too: its metadata (with U+0000) and error are JSON columns.
    assert (await store.job_detail(event.entity.id)).job == fold([event])[event.entity.id]


async def test_job_with_subjobs_lands_with_the_right_states(put, store, make_event, t0):
    job = [
        make_event(entity_id="L1", business_key="LOT1", time=t0),
        make_event(
            entity_id="L1", business_key="LOT1", kind="finished", time=t0 + timedelta(seconds=60)
        ),
    ]
    wafers = [
        make_event(entity_type="subjob", entity_id=f"L1-w{i}", parent_id="L1", sub_key=f"w{i}")
        for i in range(3)
    ]
    ends = [
        make_event(entity_type="subjob", entity_id="L1-w0", parent_id="L1", kind="finished"),
        make_event(entity_type="subjob", entity_id="L1-w1", parent_id="L1", kind="failed"),
    ]
    everything = job + wafers + ends
    await put(store, everything)
    detail = await store.job_detail("L1")
    assert detail.job == fold(everything)["L1"]
    assert detail.job.status == "finished"
    assert [s.entity_id for s in detail.subjobs] == ["L1-w0", "L1-w1", "L1-w2"]
    assert [s.status for s in detail.subjobs] == ["finished", "failed", "running"]
    expected = fold(everything)
    assert detail.subjobs == [expected[s.entity_id] for s in detail.subjobs]
    assert detail.subjobs[1].error == ErrorInfo(type="Boom", message="it broke")


async def test_out_of_order_duplicates_and_late_progress(put, store, make_event, t0):
    started = make_event(entity_id="j1", kind="started", time=t0)
    progress = make_event(
        entity_id="j1",
        kind="progress",
        time=t0 + timedelta(seconds=10),
        metrics=Metrics(progress=0.4),
    )
    finished = make_event(
        entity_id="j1",
        kind="finished",
        time=t0 + timedelta(seconds=20),
        metrics=Metrics(duration_s=20.0, cpu_user_s=3.0, progress=1.0),
        metadata={"result": "ok"},
    )
    late = make_event(  # progress reported after the finish, with an older time
        entity_id="j1",
        kind="progress",
        time=t0 + timedelta(seconds=15),
        metrics=Metrics(progress=0.9),
    )
    await put(store, [finished])
    state = (await store.job_detail("j1")).job
    assert (state.status, state.started_at, state.finished_at) == ("finished", None, finished.time)
    await put(store, [late, started, finished])
    await put(store, [progress, started])
    state = (await store.job_detail("j1")).job
    assert state == fold([started, progress, finished, late])["j1"]
    assert state.status == "finished"
    assert state.started_at == started.time
    assert state.start_time == started.time
    assert state.duration_s == 20.0
    assert state.progress == 1.0  # the finished event's is the latest by time
    assert state.metadata == {"result": "ok"}
    assert state.event_count == 4


# -- the property: any order, any batching, any repeats = fold of the distinct events ----------

_example = itertools.count()
_metric = st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False)


@st.composite
def _job_events(draw: st.DrawFn) -> list[Event]:
    """Events of one job and up to two of its subjobs, with colliding times and mixed fields."""
    job_id = f"h{next(_example)}"
    ids = [job_id] + [f"{job_id}-s{i}" for i in range(draw(st.integers(0, 2)))]
    made = []
    for _ in range(draw(st.integers(1, 10))):
        entity_id = draw(st.sampled_from(ids))
        kind = draw(st.sampled_from(["started", "progress", "finished", "failed"]))
        made.append(
            Event(
                event_id=uuid4(),
                kind=kind,
                time=T0 + timedelta(seconds=draw(st.integers(0, 5))),
                site_id=draw(st.sampled_from(["fab1", "fab2"])),
                app=App(name="etch", version=draw(st.sampled_from([None, "1", "2"]))),
                entity=Entity(
                    type="job" if entity_id == job_id else "subjob",
                    id=entity_id,
                    parent_id=None if entity_id == job_id else job_id,
                    business_key=draw(st.sampled_from([None, "LOT1", "LOT2"])),
                ),
                metrics=Metrics(
                    duration_s=draw(_metric),
                    cpu_user_s=draw(_metric),
                    mem_max_mb=draw(_metric),
                    progress=draw(st.none() | st.floats(min_value=0, max_value=1)),
                ),
                metadata=draw(
                    st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2)
                ),
                error=ErrorInfo(type="E", message=draw(st.text(max_size=5)))
                if kind == "failed"
                else None,
            )
        )
    return made


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=_job_events(), data=st.data())
async def test_any_order_and_batching_gives_the_fold(put, store, events, data):
    order = data.draw(st.permutations(events), label="order")
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=4), label="repeats")
    stream = order + repeats
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=4)))
    for lo, hi in itertools.pairwise([0, *cuts, len(stream)]):
        await put(store, stream[lo:hi])
    expected = fold(events)
    for entity_id, state in expected.items():
        detail = await store.job_detail(entity_id)
        assert detail.job == state
    root = events[0].entity.parent_id or events[0].entity.id
    if root in expected:  # the job itself may have sent nothing
        subjobs = (await store.job_detail(root)).subjobs
        assert subjobs == sorted(
            (s for s in expected.values() if s.parent_id == root),
            key=lambda s: (s.start_time, s.entity_id),
        )


async def test_concurrent_ingests_of_one_entity_lose_nothing(put, make_store, make_event, t0):
    """Two stores (two connection pools, as two gateways) write the same entity at once."""
    a, b = await make_store(), await make_store()
    for round_ in range(5):
        entity_id = f"c{round_}"
        one = [
            make_event(entity_id=entity_id, kind="progress", metrics=Metrics(progress=0.1))
            for _ in range(20)
        ]
        two = [
            make_event(entity_id=entity_id, kind="progress", metrics=Metrics(progress=0.2))
            for _ in range(20)
        ]
        shared = [make_event(entity_id=entity_id, kind="finished", metadata={"x": round_})]
        results = await asyncio.gather(put(a, one + shared), put(b, shared + two), put(a, shared))
        assert sum(r.count(True) for r in results) == 41  # the shared event stored once
        state = (await a.job_detail(entity_id)).job
        assert state.event_count == 41
        assert state == fold(one + two + shared)[entity_id]


async def test_text_with_nul_is_refused_and_the_rest_stored(put, store, make_event):
    good = make_event(entity_id="ok")
    bad = attrs.evolve(make_event(), entity=Entity(type="job", id="bad\x00id"))
    with pytest.raises(PermanentError) as info:
        await put(store, [good, bad])
    assert [str(i) for i in info.value.event_ids] == [str(bad.event_id)]
    assert await _all_events(store) == [good]


async def test_emit_is_ingest(store, make_event):
    event = make_event(entity_id="e1")
    await store.emit([event])
    await store.emit([event])
    assert (await store.job_detail("e1")).job.event_count == 1


async def test_large_batch_is_chunked(put, make_store, make_event):
    store = await make_store(batch_chunk=7)
    batch = [make_event(entity_id=f"big{i % 13}") for i in range(100)]
    assert await put(store, batch + batch[:10]) == [True] * 100 + [False] * 10
    assert len(await _all_events(store)) == 100
    counts = [(await store.job_detail(f"big{i}")).job.event_count for i in range(13)]
    assert sum(counts) == 100


async def test_query_pages_break_time_ties_by_event_id(store, make_event, t0):
    same = [make_event(entity_id="tie", time=t0, metrics=Metrics(progress=0.1)) for _ in range(9)]
    await store.ingest(same)
    found, cursor = [], None
    while True:
        result = await store.query(Query(limit=2, cursor=cursor))
        found += result.events
        if (cursor := result.next_cursor) is None:
            break
    assert found == sorted(same, key=lambda e: e.sort_key)


async def test_a_cancelled_ingest_can_be_retried(put, store, make_event):
    """The emitter contract: a cancelled emit counts as not delivered and is sent again."""
    batch = [make_event(entity_id=f"cx{i % 50}") for i in range(3000)]
    for delay in (0.001, 0.01, 0.05):
        task = asyncio.ensure_future(put(store, batch))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await put(store, batch)  # whatever the cancelled attempts left, the retry completes it
    assert await put(store, batch) == [False] * len(batch)
    expected = fold(batch)
    for entity_id in ("cx0", "cx49"):
        assert (await store.job_detail(entity_id)).job == expected[entity_id]
    assert (await store.health()).ok


async def test_ingest_wire_reads_metadata_written_with_spaces(store, make_event, t0):
    """The wire path keeps metadata as raw JSON until it wins the fold: an empty object with
    spaces inside is still empty, a spaced-out one with members still counts."""
    early = make_event(entity_id="sp", time=t0, metadata={"a": 1})
    empty = make_event(entity_id="sp", time=t0 + timedelta(seconds=1), metadata={})
    spaced = make_event(entity_id="sq", time=t0, metadata={"b": 2})
    lines = encode_ndjson([early, empty, spaced]).splitlines()
    assert b'"metadata"' not in lines[1]  # an empty object is left out: write it in
    lines[1] = lines[1].replace(b'{"schema_version"', b'{"metadata":{ },"schema_version"', 1)
    lines[2] = lines[2].replace(b'"metadata":{"b":2}', b'"metadata":{ "b" : 2 }')
    batch = read_batch(b"\n".join(lines))
    assert [b" " in line for line in batch.lines] == [False, True, True]
    assert await store.ingest_wire(batch.events, batch.lines) == [True, True, True]
    assert (await store.job_detail("sp")).job == fold([early, empty])["sp"]
    assert (await store.job_detail("sq")).job == fold([spaced])["sq"]
    assert (await store.job_detail("sq")).job.metadata == {"b": 2}


def _valid_day(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@settings(max_examples=300)
@given(st.from_regex(wire._TIME_RE, fullmatch=True).filter(_valid_day))
def test_sqlite_writes_a_wire_time_as_it_writes_the_parsed_time(text: str) -> None:
    assert _wire_time(text) == sqlite_time(datetime.fromisoformat(text))
