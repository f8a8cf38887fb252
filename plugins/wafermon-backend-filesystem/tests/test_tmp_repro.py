from datetime import timedelta
from wafermon import Query
from test_fs_adapter import write

async def test_time_range_orig(emitter, adapter, root, make_event, t0):
    in_range = make_event(time=t0)
    await emitter.emit([in_range, make_event(time=t0 - timedelta(days=1))])
    write(root, "events.jsonl", [make_event(time=t0)], day="2026-11-20")
    start = t0.replace(hour=0, minute=0)
    result = await adapter.query(Query(start=start, end=start + timedelta(days=1)))
    assert result.events == [in_range]
    result = await adapter.query(Query(end=start))
    assert [e.time.date().isoformat() for e in result.events] == ["2026-11-20", "2026-11-27"]
