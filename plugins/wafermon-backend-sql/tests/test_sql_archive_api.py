"""events_before / delete_events: what an archiver reads and removes, on both engines."""

from __future__ import annotations

from datetime import timedelta

import orjson

from wafermon import Query
from wafermon.store import EntityQuery


async def test_events_before_pages_by_keyset_and_delete_removes_only_those(store, make_event, t0):
    old = [make_event(time=t0 - timedelta(days=4, seconds=i), entity_id="j-old") for i in range(25)]
    new = [make_event(time=t0 + timedelta(seconds=i)) for i in range(5)]
    await store.ingest(old + new)
    cutoff = t0 - timedelta(days=1)

    rows, after = [], None
    while page := await store.events_before(cutoff, after=after, limit=10):
        rows += page
        after = (page[-1]["time"], page[-1]["event_id"])
    expected = sorted(old, key=lambda e: e.sort_key)
    assert [r["event_id"] for r in rows] == [e.event_id for e in expected]
    # The body is the stored JSON text, which decodes to the event's wire form.
    assert orjson.loads(rows[0]["body"])["event_id"] == str(expected[0].event_id)
    assert rows[0]["site_id"] == "fab1"
    assert rows[0]["entity_id"] == "j-old"

    keys = [(r["time"], r["event_id"]) for r in rows[:20]]
    assert await store.delete_events(keys) == 20
    assert await store.delete_events(keys) == 0  # idempotent
    left = (await store.query(Query(limit=100))).events
    assert {e.event_id for e in left} == {e.event_id for e in expected[20:] + new}
    # The job's state stays answerable after its events left the store.
    jobs = await store.entities(EntityQuery(entity_type="job", limit=100))
    assert "j-old" in {j.entity_id for j in jobs.items}
