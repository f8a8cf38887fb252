"""GatewayEmitter against a real gateway over real HTTP: each answer maps to the contract."""

from __future__ import annotations

import re

import httpx
import pytest
from gwb_helpers import TOKEN, free_port, gateway

import wafermon_backend_gateway.plugin
from wafermon import PermanentError, RetryableError, Secret
from wafermon.plugins import Plugins
from wafermon.store import EntityQuery
from wafermon_backend_gateway import GatewayEmitter, GatewaySettings


async def started(url: str, token: str | None = TOKEN) -> GatewayEmitter:
    emitter = GatewayEmitter("gw", GatewaySettings(url=url, token=Secret(token) if token else None))
    await emitter.start()
    return emitter


async def stored_ids(store) -> set[str]:
    page = await store.entities(EntityQuery(limit=1000))
    return {item.entity_id for item in page.items}


async def test_batch_lands_in_the_managed_store(tmp_path, make_events):
    events = make_events(30)
    async with gateway(tmp_path) as (url, store):
        emitter = await started(url)
        await emitter.emit(events)
        await emitter.emit(events)  # a redelivery: duplicates are not an error
        assert (await emitter.health()).ok
        await emitter.close()
        assert await stored_ids(store) == {e.entity.id for e in events}


async def test_rejected_events_are_a_permanent_error_naming_them(tmp_path, make_events):
    good, bad = make_events(3), make_events(2, drop=True)
    async with gateway(tmp_path) as (url, store):
        emitter = await started(url)
        with pytest.raises(PermanentError) as info:
            await emitter.emit(good + bad)
        await emitter.close()
        assert sorted(info.value.event_ids) == sorted(str(e.event_id) for e in bad)
        assert {e.entity.id for e in good} <= await stored_ids(store)


async def ingest_requests(url: str) -> float:
    """POSTs to the ingest route the gateway has answered, from its /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    found = re.findall(
        r'^wafermon_http_requests_total\{[^}]*route="/v1/ingest/managed"[^}]*\} (\S+)$', text, re.M
    )
    return sum(float(n) for n in found)


async def test_a_large_batch_goes_as_parallel_parts_and_refusals_name_their_events(
    tmp_path, make_events
):
    good, bad = make_events(400), make_events(3, drop=True)
    async with gateway(tmp_path) as (url, store):
        emitter = GatewayEmitter(
            "gw", GatewaySettings(url=url, token=Secret(TOKEN), parallel_requests=3)
        )
        await emitter.start()
        with pytest.raises(PermanentError) as info:
            await emitter.emit(good + bad)
        assert await ingest_requests(url) == 3  # 403 events: parts of 101, 101 and 201
        await emitter.close()
        assert sorted(info.value.event_ids) == sorted(str(e.event_id) for e in bad)
        assert await stored_ids(store) == {e.entity.id for e in good}


async def test_too_large_batches_are_split_until_they_fit(tmp_path, make_events):
    events = make_events(40, note="x" * 400)  # ~40 x 600 bytes, above a 4 KiB body cap
    async with gateway(tmp_path, max_body_bytes="4KiB") as (url, store):
        emitter = await started(url)
        await emitter.emit(events)
        await emitter.close()
        assert await stored_ids(store) == {e.entity.id for e in events}


async def test_a_single_event_above_the_cap_is_rejected_permanently(tmp_path, make_events):
    [event] = make_events(1, note="x" * 5000)
    async with gateway(tmp_path, max_body_bytes="4KiB") as (url, _store):
        emitter = await started(url)
        with pytest.raises(PermanentError, match="too large") as info:
            await emitter.emit([event])
        await emitter.close()
        assert info.value.event_ids == [str(event.event_id)]


@pytest.mark.parametrize("token", ["wrong-token", None])
async def test_auth_failures_are_retryable_so_events_stay_spooled(tmp_path, make_events, token):
    async with gateway(tmp_path) as (url, _store):
        emitter = await started(url, token)
        with pytest.raises(RetryableError, match=r"40[13]"):
            await emitter.emit(make_events(1))
        await emitter.close()


async def test_an_unreachable_gateway_is_retryable(make_events):
    emitter = await started(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryableError, match="ConnectError"):
        await emitter.emit(make_events(1))
    assert not (await emitter.health()).ok
    await emitter.close()


def test_registers_as_the_gateway_type():
    plugins = Plugins()
    plugins.register(wafermon_backend_gateway.plugin, "gateway")
    assert plugins.types("emitter")["gateway"].cls is GatewayEmitter
