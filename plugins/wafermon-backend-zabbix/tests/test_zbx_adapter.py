"""The query adapter against the real Zabbix API: events back from history.get, every Query
filter (checked against ``Query.matches``), pages, and hourly figures from trend.get."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import emit_when_ready, make_event

from wafermon import Query, Secret
from wafermon_backend_zabbix import AdapterSettings, ApiSettings, ZabbixQueryAdapter


@pytest.fixture
async def adapter(api_settings):
    ad = ZabbixQueryAdapter("zbx", AdapterSettings(api=api_settings))
    yield ad
    await ad.close()


@pytest.fixture
async def stored(emitter, adapter, site):
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    events = []
    for i in range(14):
        # Pairs of events share a second (and the 5th and 6th their microsecond too).
        events.append(
            make_event(
                site,
                app=("etch", "litho")[i % 2],
                kind=("started", "progress", "finished", "failed")[i % 4],
                entity_id=f"e{i % 3}",
                time=base + timedelta(seconds=i // 2, microseconds=0 if i in (5, 6) else i),
            )
        )
    await emit_when_ready(emitter, events)
    deadline = time.monotonic() + 20
    while len((await adapter.query(Query(site_id=site))).events) < len(events):
        assert time.monotonic() < deadline, "events not visible in history.get"
        await asyncio.sleep(0.3)
    return sorted(events, key=lambda e: e.sort_key)


def filters(events):
    t = [e.time for e in events]
    return [
        {},
        {"app": "litho"},
        {"status": "running"},
        {"status": "failed"},
        {"entity_id": "e1"},
        {"entity_type": "subjob"},
        {"business_key": "LOT-9", "app": "etch"},
        {"start": t[4], "end": t[9]},  # sub-second bounds: start included, end excluded
        {"start": t[5]},
    ]


async def test_every_filter_selects_what_query_matches_says(stored, adapter, site):
    for f in filters(stored):
        query = Query(site_id=site, **f)
        result = await adapter.query(query)
        assert result.events == [e for e in stored if query.matches(e)], f
    assert (await adapter.query(Query(site_id="no-such-site"))).events == []


async def test_pages_are_cut_by_sort_key_even_inside_one_second(stored, api_settings, site):
    # page_rows 2: every history.get page ends inside a second, or is one second whole.
    adapter = ZabbixQueryAdapter("zbx", AdapterSettings(api=api_settings, page_rows=2))
    try:
        seen, cursor = [], None
        while True:
            page = await adapter.query(Query(site_id=site, limit=3, cursor=cursor))
            assert len(page.events) <= 3
            seen.extend(page.events)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == stored  # whole events, event_id included, in (time, event_id) order
    finally:
        await adapter.close()


async def test_trends_give_hourly_figures_of_the_numeric_items(emitter, adapter, site):
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    earlier = [make_event(site, time=hour + timedelta(minutes=i)) for i in range(1, 5)]
    later = make_event(site, time=hour + timedelta(hours=1, minutes=5))  # closes the hour
    await emit_when_ready(emitter, [*earlier, later])
    deadline = time.monotonic() + 20
    while not (
        rows := await adapter.trends(site, "etch", "duration", hour, hour + timedelta(hours=1))
    ):
        assert time.monotonic() < deadline, "no trend row"
        await asyncio.sleep(0.5)
    durations = [e.metrics.duration_s for e in earlier]
    assert rows[0] == {
        "hour": hour,
        "count": 4,
        "min": min(durations),
        "avg": pytest.approx(sum(durations) / 4),
        "max": max(durations),
    }
    with pytest.raises(ValueError, match="metric"):
        await adapter.trends(site, "etch", "event", hour, hour)


async def test_an_api_token_works_as_well_as_a_password(api, api_settings, stored, site):
    users = await api.call("user.get", filter={"username": api_settings.user}, output=["userid"])
    made = await api.call("token.create", name=f"wafermon-{site}", userid=users[0]["userid"])
    tokenid = made["tokenids"][0]
    try:
        generated = await api.call("token.generate", tokenid)
        token = Secret(generated[0]["token"])
        adapter = ZabbixQueryAdapter(
            "zbx", AdapterSettings(api=ApiSettings(url=api_settings.url, token=token))
        )
        try:
            assert (await adapter.query(Query(site_id=site))).events == stored
        finally:
            await adapter.close()
    finally:
        await api.call("token.delete", tokenid)
