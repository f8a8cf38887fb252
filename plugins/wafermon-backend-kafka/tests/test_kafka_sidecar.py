"""End to end with real processes: a ``wafermon sidecar`` routes to Kafka (backend type
``kafka``), a ``wafermon gateway`` consumes the topic into PostgreSQL and serves the events;
and the Python SDK's direct mode builds the same backend from a site config."""

from __future__ import annotations

import asyncio
import time

import httpx
from kafka_helpers import PLUGINS, all_healthy, gateway_site, ndjson_events, wait_stored
from tests.helpers.sidecar import FAST_RETRY, Proc, event_ids, processes, write_yaml

from wafermon_sdk import AppRef, Client, Monitored

NDJSON = {"content-type": "application/x-ndjson"}


async def drained(url: str, name: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        backend = httpx.get(f"{url}/v1/healthz", timeout=10).json()["backends"][name]
        if backend["lag"] == 0:
            return backend
        assert time.monotonic() < deadline, backend
        await asyncio.sleep(0.2)


async def test_sidecar_to_kafka_to_gateway_group(tmp_path, pg, stream, kafka_config):
    body = ndjson_events(3000, jobs=50, tag="sc")
    sent = event_ids(body)
    sidecar_config = write_yaml(
        tmp_path / "sidecar.yaml",
        {
            "site_id": "fab1",
            "sidecar": {"spool": {"dir": str(tmp_path / "spool")}, "retry": FAST_RETRY},
            "backends": [{"name": "bus", "type": "kafka", "config": kafka_config}],
        },
    )
    with processes() as procs:
        sc = Proc("sidecar", sidecar_config, log_dir=tmp_path, env=PLUGINS)
        procs.append(sc.start())
        gws = [
            Proc("gateway", gateway_site(tmp_path / "gw.yaml", pg, stream), log_dir=tmp_path,
                 env=PLUGINS)
            for _ in range(2)
        ]  # fmt: skip
        for gw in gws:
            procs.append(gw.start())
        lines = body.splitlines(keepends=True)
        async with httpx.AsyncClient() as client:
            for start in range(0, len(lines), 500):
                chunk = b"".join(lines[start : start + 500])
                r = await client.post(f"{sc.url}/v1/ingest/events", content=chunk, headers=NDJSON)
                assert r.status_code == 202, r.text
        backend = await drained(sc.url, "bus")
        assert backend["delivered_events"] == len(sent)
        assert await wait_stored(pg, len(sent), timeout=120) == (len(sent), len(sent))
        await all_healthy(gws)
        # The gateways serve what they consumed: one job's events, in order, through the API.
        r = httpx.get(f"{gws[0].url}/v1/subjobs", params={"parent_id": "sc-lot7", "limit": 1000})
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == 3000 // 50


async def test_sdk_direct_mode_sends_to_kafka(tmp_path, pg, stream, kafka_config):
    site = write_yaml(
        tmp_path / "site.yaml",
        {"site_id": "fab1", "backends": [{"name": "bus", "type": "kafka", "config": kafka_config}]},
    )

    def run() -> dict:
        client = Client(mode="direct", site_config=str(site), spool_dir=str(tmp_path / "spool"))
        app = AppRef(name="direct-kafka", version="1.0")
        with Monitored(app=app, business_key="lot-k", client=client):
            for wafer in range(3):
                with Monitored(app=app, entity_type="subjob", sub_key=f"w{wafer}", client=client):
                    pass
        assert client.flush(30), client.stats()
        stats = client.stats()
        client.close(10)
        return stats

    stats = await asyncio.to_thread(run)
    assert stats["sinks"]["direct.bus"]["sent"] == 2 + 3 * 2
    with processes() as procs:
        gw = Proc("gateway", gateway_site(tmp_path / "gw.yaml", pg, stream), log_dir=tmp_path,
                  env=PLUGINS)  # fmt: skip
        procs.append(gw.start())
        assert await wait_stored(pg, 8, timeout=60) == (8, 8)
