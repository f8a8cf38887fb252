"""EntityState.merge: the same final job state whatever order or batching events arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wafermon import App, Entity, ErrorInfo, Event, Metrics
from wafermon.store import EntityQuery, EntityState, fold

T0 = datetime(2026, 11, 28, 8, tzinfo=UTC)


def job_events(n_progress: int, outcome: str, seed: int) -> list[Event]:
    entity = Entity(type="job", id="j-1", business_key="LOT-1")
    app = App(name="etch", version="1")

    def event(i: int, kind: str, **fields) -> Event:
        return Event(
            event_id=UUID(int=seed * 1000 + i),
            kind=kind,
            time=T0 + timedelta(seconds=i),
            site_id="fab1",
            app=app,
            entity=entity,
            **fields,
        )

    events = [event(0, "started", metadata={"tool": "etch-07"})]
    events += [
        event(i, "progress", metrics=Metrics(progress=i / (n_progress + 1)))
        for i in range(1, n_progress + 1)
    ]
    end = n_progress + 1
    if outcome == "finished":
        events.append(event(end, "finished", metrics=Metrics(duration_s=end, cpu_user_s=1.0)))
    elif outcome == "failed":
        events.append(
            event(
                end,
                "failed",
                metrics=Metrics(duration_s=end),
                error=ErrorInfo(type="E", message="boom"),
            )
        )
    return events


@st.composite
def shuffled_batches(draw):
    events = job_events(
        draw(st.integers(0, 6)), draw(st.sampled_from(["finished", "failed", "running"])), 1
    )
    order = draw(st.permutations(events))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=3)))
    batches, last = [], 0
    for cut in [*cuts, len(order)]:
        batches.append(order[last:cut])
        last = cut
    return events, [b for b in batches if b]


@settings(max_examples=300)
@given(shuffled_batches())
def test_any_order_and_batching_gives_the_same_state(case):
    events, batches = case
    expected = fold(events)["j-1"]
    one_by_one = [EntityState.from_event(e) for e in batches[0]]
    for state in one_by_one[1:]:
        one_by_one[0] = one_by_one[0].merge(state)
    assert one_by_one[0] == fold(batches[0])["j-1"]  # the one-pass fold is the merge
    partial = [fold(batch)["j-1"] for batch in batches]
    merged = partial[0]
    for state in partial[1:]:
        merged = merged.merge(state)
    assert merged == expected
    assert partial[-1].merge(partial[0]) == partial[0].merge(partial[-1])


def test_finished_job_state():
    state = fold(job_events(3, "finished", 1))["j-1"]
    assert state.status == "finished"
    assert state.started_at == T0
    assert state.finished_at == state.updated_at == T0 + timedelta(seconds=4)
    assert state.duration_s == 4
    assert state.progress == 0.75  # the last progress reported
    assert state.metadata == {"tool": "etch-07"}
    assert state.event_count == 5


def test_failure_wins_and_keeps_the_error():
    events = job_events(1, "failed", 1) + job_events(0, "finished", 2)[1:]
    state = fold(events)["j-1"]
    assert state.status == "failed"
    assert state.error == ErrorInfo(type="E", message="boom")


def test_progress_after_finish_does_not_reopen_the_job():
    events = job_events(0, "finished", 1)
    late = Event(
        event_id=UUID(int=999),
        kind="progress",
        time=T0 + timedelta(hours=1),
        site_id="fab1",
        app=App(name="etch"),
        entity=Entity(type="job", id="j-1"),
        metrics=Metrics(progress=0.5),
    )
    state = fold([*events, late])["j-1"]
    assert state.status == "finished"
    assert state.duration_s == 1  # metrics of the terminal event outrank later progress


def test_finished_without_started_uses_first_event_as_start():
    [finished] = job_events(0, "finished", 1)[1:]
    state = EntityState.from_event(finished)
    assert state.started_at is None
    assert state.start_time == finished.time


def test_entity_query_validates_its_fields():
    with pytest.raises(ValueError, match="status: must be one of failed, finished, running"):
        EntityQuery(status="done")
    with pytest.raises(ValueError, match="limit: must be between 1 and 1000"):
        EntityQuery(limit=0)
