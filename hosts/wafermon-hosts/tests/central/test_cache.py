"""Central's answer cache: TTL per (site, path + query), single flight, no-cache, no errors kept."""

from __future__ import annotations

import asyncio

import httpx

from tests.helpers.central import (
    central_client,
    dead_url,
    encode_events,
    gateway_requests,
    job_events,
    metric,
    site_gateway,
)
from wafermon_hosts.central.cache import AnswerCache


async def test_a_repeated_query_is_answered_from_the_cache_until_the_ttl_passes(tmp_path, plugins):
    async with (
        site_gateway(tmp_path, plugins, "fab1", job_events("fab1", [("a", 1)])) as url,
        central_client(tmp_path, {"fab1": url}, cache_ttl="400ms") as (client, _app),
    ):
        first = (await client.get("/v1/jobs?status=finished")).json()
        assert "cached" not in first["sites"]["fab1"]
        second = (await client.get("/v1/jobs?status=finished")).json()
        assert second["sites"]["fab1"]["cached"] is True
        assert second["items"] == first["items"]
        assert await gateway_requests(url, "/v1/jobs") == 1
        # Another query is another key.
        await client.get("/v1/jobs?status=failed")
        assert await gateway_requests(url, "/v1/jobs") == 2
        await asyncio.sleep(0.45)
        third = (await client.get("/v1/jobs?status=finished")).json()
        assert "cached" not in third["sites"]["fab1"]
        assert await gateway_requests(url, "/v1/jobs") == 3
        text = (await client.get("/metrics")).text
        assert metric(text, "wafermon_central_cache_lookups_total", result="hit") == 1
        assert metric(text, "wafermon_central_cache_lookups_total", result="miss") == 3


async def test_no_cache_fetches_fresh_and_new_data_shows_after_the_ttl(tmp_path, plugins):
    async with (
        site_gateway(tmp_path, plugins, "fab1", job_events("fab1", [("a", 1)])) as url,
        central_client(tmp_path, {"fab1": url}, cache_ttl="30s") as (client, _app),
    ):
        assert len((await client.get("/v1/jobs")).json()["items"]) == 1
        async with httpx.AsyncClient() as gw:
            await gw.post(
                f"{url}/v1/ingest/managed",
                content=encode_events(job_events("fab1", [("b", 2)])),
            )
        assert len((await client.get("/v1/jobs")).json()["items"]) == 1  # cached
        fresh = await client.get("/v1/jobs", headers={"Cache-Control": "no-cache"})
        assert len(fresh.json()["items"]) == 2
        # The fresh answer replaced the cached one for everybody.
        assert len((await client.get("/v1/jobs")).json()["items"]) == 2


async def test_identical_concurrent_requests_cost_the_site_one_request(tmp_path, plugins):
    async with (
        site_gateway(tmp_path, plugins, "fab1", job_events("fab1", [("a", 1)])) as url,
        central_client(tmp_path, {"fab1": url}) as (client, _app),
    ):
        answers = await asyncio.gather(*(client.get("/v1/jobs?limit=5") for _ in range(8)))
        assert {r.status_code for r in answers} == {200}
        assert await gateway_requests(url, "/v1/jobs") == 1


async def test_failures_are_not_cached(tmp_path):
    async with central_client(tmp_path, {"fab1": dead_url()}, cache_ttl="30s") as (client, app):
        for _ in range(2):
            body = (await client.get("/v1/jobs")).json()
            assert body["sites"]["fab1"]["status"] == "failed"
            assert "cached" not in body["sites"]["fab1"]
        assert len(app.state.central.cache) == 0


async def test_cache_ttl_zero_turns_it_off(tmp_path, plugins):
    async with (
        site_gateway(tmp_path, plugins, "fab1") as url,
        central_client(tmp_path, {"fab1": url}, cache_ttl=0) as (client, _app),
    ):
        await client.get("/v1/jobs")
        await client.get("/v1/jobs")
        assert await gateway_requests(url, "/v1/jobs") == 2


def test_the_cache_drops_the_least_recently_used_entry_and_expires_by_age():
    now = [0.0]
    cache = AnswerCache(ttl=5, max_entries=2, clock=lambda: now[0])
    cache.put(("a", "/1"), 1)
    cache.put(("a", "/2"), 2)
    assert cache.get(("a", "/1")) == (True, 1)  # /1 is now the most recently used
    cache.put(("b", "/1"), 3)
    assert cache.get(("a", "/2")) == (False, None)
    assert cache.get(("b", "/1")) == (True, 3)
    now[0] = 5.0
    assert cache.get(("a", "/1")) == (False, None)
    assert len(cache) == 1
