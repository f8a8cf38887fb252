"""The emitter and provisioning against the real Zabbix server (trapper) and API."""

from __future__ import annotations

import asyncio

import pytest
from conftest import emit_when_ready, history, make_event, reload_cache, wait_history

from wafermon import PermanentError, RetryableError
from wafermon_backend_zabbix import ZabbixEmitter, provision_site

PROTOTYPES = {
    "wafermon.status[{#APP}]": "3",
    "wafermon.duration[{#APP}]": "0",
    "wafermon.cpu[{#APP}]": "0",
    "wafermon.mem[{#APP}]": "0",
    "wafermon.event[{#APP}]": "4",
}


async def objects(api, host: str) -> dict:
    hosts = await api.call("host.get", filter={"host": [host]}, output=["hostid"])
    rules = await api.call(
        "discoveryrule.get", hostids=[h["hostid"] for h in hosts], output=["itemid", "key_"]
    )
    protos = await api.call(
        "itemprototype.get",
        discoveryids=[r["itemid"] for r in rules],
        output=["key_", "value_type", "type"],
    )
    return {
        "hosts": len(hosts),
        "rules": [r["key_"] for r in rules],
        "prototypes": {p["key_"]: p["value_type"] for p in protos},
        "trapper": {p["type"] for p in protos},
    }


async def test_provisioning_is_idempotent_and_repairs_drift(api, site):
    host = f"wafermon-{site}"
    first = await provision_site(api, host, "wafermon")
    assert f"host {host}" in first.created
    assert len([c for c in first.created if c.startswith("item prototype")]) == 5
    want = {"hosts": 1, "rules": ["wafermon.apps"], "prototypes": PROTOTYPES, "trapper": {"2"}}
    assert await objects(api, host) == want
    second = await provision_site(api, host, "wafermon")
    assert (second.created, second.updated, second.hostid) == ([], [], first.hostid)
    assert await objects(api, host) == want
    # Someone changed a prototype's type by hand: the next run puts it back, and says so.
    protos = await api.call(
        "itemprototype.get",
        hostids=[first.hostid],
        filter={"key_": ["wafermon.mem[{#APP}]"]},
        output=["itemid"],
    )
    await api.call("itemprototype.update", itemid=protos[0]["itemid"], value_type=3)
    third = await provision_site(api, host, "wafermon")
    assert third.updated == ["item prototype wafermon.mem[{#APP}]"]
    assert third.created == []
    assert await objects(api, host) == want


async def test_values_arrive_in_the_discovered_items(api, site, emitter):
    events = [
        make_event(site, app="litho, 2nd", kind=k)
        for k in ("started", "progress", "finished", "failed")
    ]
    await emit_when_ready(emitter, events)
    key = 'wafermon.status["litho, 2nd"]'  # quoted the way Zabbix quotes {#APP} in keys
    status = await wait_history(api, site, key, 3, 4)
    assert sorted(int(r["value"]) for r in status) == [0, 1, 2, 3]
    duration = await wait_history(api, site, 'wafermon.duration["litho, 2nd"]', 0, 4)
    assert sorted(float(r["value"]) for r in duration) == sorted(
        e.metrics.duration_s for e in events
    )
    cpu = await wait_history(api, site, 'wafermon.cpu["litho, 2nd"]', 0, 4)
    assert {float(r["value"]) for r in cpu} == {2.5}
    # Each value carries its event's time.
    assert sorted((int(r["clock"]), int(r["ns"]) // 1000) for r in status) == sorted(
        (int(e.time.timestamp()), e.time.microsecond) for e in events
    )


async def test_a_resent_batch_is_stored_once(api, site, emitter, emitter_settings):
    events = [make_event(site) for _ in range(6)]
    await emit_when_ready(emitter, events)
    sent = emitter.stats()["values_sent"]
    await emitter.emit(events)  # the same emitter: nothing is sent again
    assert emitter.stats()["values_sent"] == sent
    fresh = ZabbixEmitter("zbx2", emitter_settings())  # a restarted sidecar: sends all again
    try:
        await fresh.emit(events)
        assert fresh.stats()["values_refused"] == 0
    finally:
        await fresh.close()
    await asyncio.sleep(2.0)  # let the history syncer write whatever it was given
    rows = await history(api, site, "wafermon.status[etch]", 3)
    assert len(rows) == 6  # (item, clock, ns) is the same: Zabbix kept one of each


async def test_unknown_host_and_item_values_are_reported_per_value(
    api, site, emitter, emitter_settings
):
    await emit_when_ready(emitter, [make_event(site)])  # host, rule and etch's items exist
    plain = ZabbixEmitter("plain", emitter_settings(discovery=False, refused_grace=0))
    try:
        good = [make_event(site) for _ in range(5)]
        no_host = make_event("nosuchsite-" + site)
        no_item = make_event(site, app="never-discovered")
        with pytest.raises(PermanentError) as caught:
            await plain.emit([*good[:2], no_host, *good[2:], no_item])
        assert sorted(caught.value.event_ids) == sorted(
            [str(no_host.event_id), str(no_item.event_id)]
        )
        message = str(caught.value)
        assert f"host 'wafermon-nosuchsite-{site}' key 'wafermon.status[etch]'" in message
        assert "key 'wafermon.event[never-discovered]'" in message
        assert plain.stats()["values_refused"] == 10  # 5 values each, every one found
        rows = await wait_history(api, site, "wafermon.status[etch]", 3, 6)
        assert len(rows) == 6  # the good ones are stored
    finally:
        await plain.close()


async def test_refused_values_are_retried_for_the_grace_period_first(site, emitter_settings):
    emitter = ZabbixEmitter("zbx", emitter_settings(refused_grace=0.5))
    try:
        event = make_event("nosuchsite-" + site)
        with pytest.raises(RetryableError, match=r"retried for up to 0\.5s"):
            await emitter.emit([event])
        await asyncio.sleep(0.6)
        with pytest.raises(PermanentError) as caught:
            await emitter.emit([event])
        assert caught.value.event_ids == [str(event.event_id)]
    finally:
        await emitter.close()


async def test_an_unreachable_trapper_is_retryable(site, emitter_settings):
    emitter = ZabbixEmitter("zbx", emitter_settings(port=9, timeout=2))
    try:
        with pytest.raises(RetryableError, match="trapper"):
            await emitter.emit([make_event(site)])
        assert not (await emitter.health()).ok
    finally:
        await emitter.close()


def test_reload_cache_works():
    reload_cache()  # the helper the other tests lean on fails loudly, not silently
