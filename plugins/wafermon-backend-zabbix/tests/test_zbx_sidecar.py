"""A real ``wafermon sidecar`` routing to Zabbix: values Zabbix refuses end, per event, in the
router's dead-letter file with the refused host and key named; the rest is delivered."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
from conftest import emit_when_ready, make_event, wait_history

from wafermon import encode_ndjson
from wafermon.testing import FAST_RETRY, Proc, processes, write_yaml


async def test_refused_values_are_dead_lettered_by_the_sidecar_with_host_and_key(
    tmp_path, api, site, emitter, trapper
):
    await emit_when_ready(emitter, [make_event(site)])  # this site's host and items exist
    good = [make_event(site) for _ in range(4)]
    unknown = [make_event("nosuch-" + site) for _ in range(2)]
    config = write_yaml(
        tmp_path / "sidecar.yaml",
        {
            "site_id": site,
            "sidecar": {"spool": {"dir": str(tmp_path / "spool")}, "retry": FAST_RETRY},
            "backends": [
                {
                    "name": "zbx",
                    "type": "zabbix",
                    "config": {"server": trapper[0], "port": trapper[1], "refused_grace": "1s"},
                }
            ],
        },
    )
    env = {"WAFERMON_LOAD_PLUGINS": "hosts,zabbix"}
    with processes() as procs:
        sc = Proc("sidecar", config, log_dir=tmp_path, env=env)
        procs.append(sc.start())
        async with httpx.AsyncClient(base_url=sc.url, timeout=10) as client:
            body = encode_ndjson([good[0], unknown[0], *good[1:], unknown[1]])
            r = await client.post(
                "/v1/ingest/events", content=body, headers={"content-type": "application/x-ndjson"}
            )
            assert r.status_code == 202, r.text
            deadline = time.monotonic() + 60
            while True:
                state = (await client.get("/v1/healthz")).json()["backends"]["zbx"]
                if state["lag"] == 0:
                    break
                assert time.monotonic() < deadline, state
                await asyncio.sleep(0.2)
        assert (state["delivered_events"], state["dead_lettered_events"]) == (4, 2)
        assert sc.terminate() == 0
    lines = (tmp_path / "dead-letter" / "zbx.jsonl").read_text().splitlines()
    entries = [orjson.loads(line) for line in lines]
    assert sorted(e["event"]["event_id"] for e in entries) == sorted(
        str(e.event_id) for e in unknown
    )
    assert f"host 'wafermon-nosuch-{site}' key 'wafermon.status[etch]'" in entries[0]["reason"]
    rows = await wait_history(api, site, "wafermon.status[etch]", 3, 5)
    assert len(rows) == 5  # the warm-up event and the 4 good ones
