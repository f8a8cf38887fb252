"""The query adapter against a real node: every Query filter, pages, and the unified format.

Expected answers come from ``Query.matches`` and ``Event.sort_key`` over the same events, the
core's own definition of what a query means, so each filter's translation is checked by ES.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import T0, make_event

from wafermon import Query
from wafermon_backend_elasticsearch import AdapterSettings, ElasticsearchQueryAdapter


@pytest.fixture
async def stored(emitter, es, prefix):
    events = []
    for i in range(24):
        events.append(
            make_event(
                site_id=("fab1", "fab2")[i % 2],
                app=("etch", "litho", "cmp")[i % 3],
                kind=("started", "progress", "finished", "failed")[i % 4],
                entity_type=("job", "subjob")[(i // 2) % 2],
                entity_id=f"e{i % 5}",
                business_key=("LOT-1", "LOT-2", None)[i % 3],
                sub_key=(f"w{i % 4}" if i % 3 else None),
                time=T0 + timedelta(hours=i, microseconds=i * 17),
            )
        )
    # Two events in the same microsecond: event_id breaks the tie.
    events.append(make_event(time=events[5].time, entity_id="e-tie"))
    await emitter.emit(events)
    await es.indices.refresh(index=f"{prefix}-*")
    return sorted(events, key=lambda e: e.sort_key)


FILTERS = [
    {},
    {"start": T0 + timedelta(hours=3), "end": T0 + timedelta(hours=9)},
    {"start": T0 + timedelta(hours=5, microseconds=85)},  # exactly one event's time: included
    {"end": T0 + timedelta(hours=5, microseconds=85)},  # ... and excluded
    {"site_id": "fab2"},
    {"app": "litho"},
    {"entity_type": "subjob"},
    {"entity_id": "e3"},
    {"parent_id": "j0"},  # the subjobs of job j0
    {"status": "running"},
    {"status": "finished"},
    {"status": "failed"},
    {"business_key": "LOT-2"},
    {"sub_key": "w1"},
    {"site_id": "fab1", "app": "etch", "status": "running"},
    {"app": "no-such-app"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "none")
async def test_every_filter_selects_what_query_matches_says(stored, adapter, filters):
    query = Query(limit=1000, **filters)
    result = await adapter.query(query)
    assert result.events == [e for e in stored if query.matches(e)]
    assert result.next_cursor is None


async def test_pages_follow_the_sort_key_without_gaps_or_repeats(stored, es_conn, prefix):
    # page_size 2 < limit 5: each query call takes several ES pages inside one point in time.
    adapter = ElasticsearchQueryAdapter(
        "es", AdapterSettings(**es_conn, index_prefix=prefix, page_size=2)
    )
    try:
        seen, cursor = [], None
        while True:
            page = await adapter.query(Query(limit=5, cursor=cursor))
            seen.extend(page.events)
            assert len(page.events) <= 5
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == stored  # the whole events, every field, in (time, event_id) order
    finally:
        await adapter.close()


async def test_a_filtered_query_pages_too(stored, adapter):
    query = Query(limit=2, site_id="fab1")
    first = await adapter.query(query)
    second = await adapter.query(Query(limit=2, site_id="fab1", cursor=first.next_cursor))
    expected = [e for e in stored if e.site_id == "fab1"]
    assert first.events + second.events == expected[:4]


async def test_no_index_yet_is_an_empty_answer(adapter):
    result = await adapter.query(Query())
    assert result.events == []
    assert result.next_cursor is None


async def test_a_document_that_is_not_an_event_is_skipped(stored, es, adapter, prefix):
    await es.index(
        index=f"{prefix}-2026.11.28",
        id="not-an-event",
        document={"event_id": "not-a-uuid", "kind": "started", "time": "2026-11-28T10:00:00Z"},
        refresh=True,
    )
    assert (await adapter.query(Query(limit=1000))).events == stored
