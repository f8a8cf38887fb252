"""Reading: entities() filters, sorts and keyset pages; job_detail; query() over events."""

from __future__ import annotations

from datetime import timedelta

import pytest
import pytest_asyncio

from wafermon import Query
from wafermon.errors import FieldValueError
from wafermon.store import ENTITY_SORTS, EntityQuery, fold
from wafermon_backend_sql import Settings, SqlStore

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the fleet's store lives in that loop


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def fleet_store(request, tmp_path_factory, make_event, t0, database_factory):
    """A store holding the fleet, built once per module and engine: these tests only read."""
    directory = tmp_path_factory.mktemp("fleet")
    async with database_factory(request.param, directory, request) as url:
        store = SqlStore("managed", Settings(url=url))
        await store.start()
        try:
            yield store, await _ingest_fleet(store, make_event, t0)
        finally:
            await store.close()


@pytest.fixture
def store(fleet_store):
    return fleet_store[0]


@pytest.fixture
def fleet(fleet_store):
    return fleet_store[1]


async def _ingest_fleet(store, make_event, t0):
    """250 jobs (ids that sort differently by case and digits), 2 subjobs each for 20 of them.

    Start times repeat every 50 jobs, so sorting has to break ties by entity_id.
    """
    events = []
    for i in range(250):
        job = f"{'Job' if i % 4 == 0 else 'job'}-{i}"
        common = {
            "entity_id": job,
            "site_id": f"fab{i % 2 + 1}",
            "app": "etch" if i % 3 else "litho",
            "business_key": f"LOT{i % 10}",
            "sub_key": "S" if i % 7 == 0 else None,
        }
        first_kind = "started" if i % 5 else "progress"  # some never send 'started'
        events.append(make_event(kind=first_kind, time=t0 + timedelta(seconds=i % 50), **common))
        end = ("progress", "finished", "failed")[i % 3]
        events.append(
            make_event(kind=end, time=t0 + timedelta(seconds=100 + (i * 7) % 90), **common)
        )
        if i < 20:
            for w in range(2):
                events.append(
                    make_event(
                        entity_type="subjob",
                        entity_id=f"{job}/w{w}",
                        parent_id=job,
                        kind="finished" if w else "started",
                        time=t0 + timedelta(seconds=10 + w),
                    )
                )
    assert all(await store.ingest(events))
    return events


async def _all_pages(store, **filters):
    items, cursor, pages = [], None, 0
    while True:
        page = await store.entities(EntityQuery(cursor=cursor, **filters))
        items += page.items
        pages += 1
        if page.next_cursor is None:
            return items, pages
        cursor = page.next_cursor


def _expected(events, sort="-start_time", entity_type="job", **filters):
    states = [s for s in fold(events).values() if s.entity_type == entity_type]
    for name, value in filters.items():
        if name == "start":
            states = [s for s in states if s.start_time >= value]
        elif name == "end":
            states = [s for s in states if s.start_time < value]
        else:
            states = [s for s in states if getattr(s, name) == value]
    field = sort.lstrip("-")
    return sorted(
        states, key=lambda s: (getattr(s, field), s.entity_id), reverse=sort.startswith("-")
    )


@pytest.mark.parametrize("sort", ENTITY_SORTS)
async def test_every_sort_pages_through_without_gaps_or_repeats(store, fleet, sort):
    items, pages = await _all_pages(store, sort=sort, limit=100)
    assert pages == 3
    assert items == _expected(fleet, sort)
    assert len({s.entity_id for s in items}) == 250


async def test_default_sort_is_newest_start_first(store, fleet):
    page = await store.entities(EntityQuery(limit=5))
    assert page.items == _expected(fleet)[:5]
    assert page.next_cursor is not None


@pytest.mark.parametrize(
    "filters",
    [
        {"site_id": "fab2"},
        {"app": "litho"},
        {"status": "failed"},
        {"status": "running"},
        {"business_key": "LOT3"},
        {"sub_key": "S"},
        {"site_id": "fab1", "status": "finished", "app": "etch"},
        {"status": "finished", "sort": "updated_at"},
        {"entity_type": "subjob", "parent_id": "Job-4"},
        {"entity_type": "subjob", "status": "finished"},
        {"parent_id": "nobody", "entity_type": "subjob"},
    ],
    ids=repr,
)
async def test_filters(store, fleet, filters):
    items, _ = await _all_pages(store, limit=17, **filters)
    assert items == _expected(fleet, **filters)


async def test_time_range_applies_to_start_time(store, fleet, t0):
    window = {"start": t0 + timedelta(seconds=10), "end": t0 + timedelta(seconds=20)}
    items, _ = await _all_pages(store, limit=9, **window)
    assert items == _expected(fleet, **window)
    assert len(items) == 50  # 10 seconds x 5 jobs per second


async def test_bad_or_foreign_cursors_are_field_errors(store, fleet):
    page = await store.entities(EntityQuery(limit=10))
    with pytest.raises(FieldValueError, match="cursor"):
        await store.entities(EntityQuery(limit=10, sort="updated_at", cursor=page.next_cursor))
    with pytest.raises(FieldValueError, match="cursor"):
        await store.entities(EntityQuery(cursor="garbage!"))


async def test_job_detail(store, fleet):
    detail = await store.job_detail("Job-4")
    expected = fold(fleet)
    assert detail.job == expected["Job-4"]
    assert [s.entity_id for s in detail.subjobs] == ["Job-4/w0", "Job-4/w1"]
    assert detail.subjobs == [expected["Job-4/w0"], expected["Job-4/w1"]]
    own = sorted((e for e in fleet if e.entity.id == "Job-4"), key=lambda e: e.sort_key)
    assert detail.events == own
    limited = await store.job_detail("Job-4", events_limit=1)
    assert limited.events == own[:1]
    assert await store.job_detail("no-such-job") is None
    subjob = await store.job_detail("Job-4/w1")
    assert subjob.job == expected["Job-4/w1"]
    assert subjob.subjobs == []


# -- query() over events ------------------------------------------------------------------------


async def _query_all(store, **filters):
    found, cursor = [], None
    while True:
        result = await store.query(Query(cursor=cursor, **filters))
        found += result.events
        if result.next_cursor is None:
            return found
        cursor = result.next_cursor


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"site_id": "fab1"},
        {"app": "litho"},
        {"entity_type": "subjob"},
        {"entity_id": "job-5"},
        {"status": "running"},
        {"status": "failed"},
        {"business_key": "LOT7"},
        {"sub_key": "S", "status": "finished"},
        {"parent_id": "Job-4"},
    ],
    ids=repr,
)
async def test_query_filters_and_pages(store, fleet, filters):
    query = Query(**filters)
    expected = sorted((e for e in fleet if query.matches(e)), key=lambda e: e.sort_key)
    assert await _query_all(store, limit=33, **filters) == expected


async def test_query_by_parent_is_pushed_down_to_the_database(store):
    """A page holds only the job's subjobs (not a page of everything, filtered later)."""
    page = await store.query(Query(parent_id="Job-4", limit=10))
    assert sorted(e.entity.id for e in page.events) == ["Job-4/w0", "Job-4/w1"]
    assert page.next_cursor is None


async def test_query_time_range_is_half_open(store, fleet, t0):
    start, end = t0 + timedelta(seconds=5), t0 + timedelta(seconds=10)
    query = Query(start=start, end=end)
    expected = sorted((e for e in fleet if query.matches(e)), key=lambda e: e.sort_key)
    assert expected[0].time == start
    assert expected[-1].time < end
    assert await _query_all(store, start=start, end=end, limit=4) == expected
