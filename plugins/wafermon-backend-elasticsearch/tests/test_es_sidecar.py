"""Real processes: a ``wafermon sidecar`` routes to Elasticsearch, Zabbix and a gateway, and
the gateway's unified view reads ES and Zabbix back; ES is stopped mid-run and started again.

The ES node and Zabbix server are the ones scripts/services started; the outage test stops ES
with SIGTERM and starts it again with ``scripts/services start es`` (same port and data, ~15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time

import httpx
from conftest import REPO, stored_ids

from wafermon.testing import FAST_RETRY, Proc, event_ids, ndjson_batch, processes, write_yaml

NDJSON = {"content-type": "application/x-ndjson"}
GW_TOKEN = "gw-ingest-token"
READ_TOKEN = "gw-read-token"
READ = {"authorization": f"Bearer {READ_TOKEN}"}
HOST_PREFIX = "wafermon-"


def es_backend(es_config: dict, prefix: str) -> dict:
    config = {**es_config, "index_prefix": prefix, "replicas": 0, "request_timeout": "5s"}
    return {"name": "elk", "type": "elasticsearch", "config": config}


def sidecar(tmp_path, backends: list[dict], site_id: str = "fab1") -> Proc:
    config = write_yaml(
        tmp_path / "sidecar.yaml",
        {
            "site_id": site_id,
            "sidecar": {"spool": {"dir": str(tmp_path / "spool")}, "retry": FAST_RETRY},
            "backends": backends,
        },
    )
    env = {"WAFERMON_LOAD_PLUGINS": "hosts,gateway,elasticsearch,zabbix"}
    return Proc("sidecar", config, log_dir=tmp_path, env=env)


def gateway(tmp_path, sources: list[dict], site_id: str = "fab1") -> Proc:
    config = write_yaml(
        tmp_path / "gateway.yaml",
        {
            "site_id": site_id,
            "gateway": {"tokens": {"ingest": GW_TOKEN, "read": READ_TOKEN}},
            "backends": [
                {
                    "name": "managed",
                    "type": "sql",
                    "config": {"url": f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"},
                }
            ],
            "sources": sources,
        },
    )
    return Proc("gateway", config, log_dir=tmp_path)


async def drained(url: str, names: list[str], timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            async with httpx.AsyncClient() as client:
                backends = (await client.get(f"{url}/v1/healthz", timeout=10)).json()["backends"]
            if all(backends[n]["lag"] == 0 for n in names):
                return backends
        assert time.monotonic() < deadline, f"not drained in {timeout}s: {backends}"
        await asyncio.sleep(0.2)


async def unified(gw_url: str, **params) -> tuple[list[str], dict]:
    """Every event id of the unified view, page by page, and the last page's source status."""
    found, cursor = [], None
    async with httpx.AsyncClient(base_url=gw_url, timeout=30, headers=READ) as client:
        while True:
            query = {"limit": 500, **params, **({"cursor": cursor} if cursor else {})}
            r = await client.get("/v1/data/unified", params=query)
            assert r.status_code == 200, r.text
            page = r.json()
            found.extend(e["event_id"] for e in page["events"])
            cursor = page.get("next_cursor")
            if not cursor:
                return found, page["sources"]


def zabbix_api() -> dict:
    return {
        "url": os.environ["WAFERMON_TEST_ZABBIX_API_URL"],
        "user": os.environ["WAFERMON_TEST_ZABBIX_USER"],
        "password": os.environ["WAFERMON_TEST_ZABBIX_PASSWORD"],
    }


def reload_zabbix_cache() -> None:
    """New items count after the server's next config sync (5 s here): ask for it now."""
    conf = os.environ["WAFERMON_TEST_ZABBIX_SERVER_CONF"]
    subprocess.run(
        ["zabbix_server", "-c", conf, "-R", "config_cache_reload"], check=True, capture_output=True
    )


async def test_sidecar_to_es_and_zabbix_and_back_through_the_gateways_unified_view(
    tmp_path, es, es_config, prefix, zabbix_host
):
    if not os.environ.get("WAFERMON_TEST_ZABBIX_API_URL"):
        raise AssertionError(
            'WAFERMON_TEST_ZABBIX_* not set: eval "$(scripts/services start zabbix)"'
        )
    trapper_host, trapper_port = os.environ["WAFERMON_TEST_ZABBIX_TRAPPER"].rsplit(":", 1)
    site = zabbix_host.removeprefix(HOST_PREFIX)
    body = ndjson_batch(300, prefix="rt").replace(
        b'"site_id":"fab1"', f'"site_id":"{site}"'.encode()
    )
    sent = event_ids(body)
    zbx_source = {"host_prefix": HOST_PREFIX, "api": zabbix_api()}
    with processes() as procs:
        gw = gateway(
            tmp_path,
            [
                {
                    "name": "elk",
                    "type": "elasticsearch",
                    "config": {**es_config, "index_prefix": prefix},
                },
                {"name": "zbx", "type": "zabbix", "config": zbx_source},
            ],
            site_id=site,
        )
        procs.append(gw.start())
        managed = {
            "name": "managed-gw",
            "type": "gateway",
            "config": {"url": gw.url, "token": GW_TOKEN},
        }
        zbx_backend = {
            "name": "zbx",
            "type": "zabbix",
            "config": {
                "server": trapper_host,
                "port": int(trapper_port),
                "provision": True,
                "chunk_size": 100,
                **zbx_source,
            },
        }
        sc = sidecar(tmp_path, [managed, es_backend(es_config, prefix), zbx_backend], site_id=site)
        procs.append(sc.start())
        async with httpx.AsyncClient() as client:
            for start in range(0, 300, 100):
                chunk = b"\n".join(body.splitlines()[start : start + 100]) + b"\n"
                r = await client.post(f"{sc.url}/v1/ingest/events", content=chunk, headers=NDJSON)
                assert r.status_code == 202, r.text
        # Zabbix refuses values until the provisioned LLD rule, then the discovered items,
        # are in its config cache; the sidecar retries meanwhile.
        deadline = time.monotonic() + 120
        while True:
            backends = await drained(sc.url, [], timeout=10)
            if all(backends[n]["lag"] == 0 for n in ("managed-gw", "elk", "zbx")):
                break
            assert time.monotonic() < deadline, f"not drained: {backends}"
            await asyncio.to_thread(reload_zabbix_cache)
            await asyncio.sleep(1.0)
        assert backends["zbx"].get("dead_lettered_events", 0) == 0, backends["zbx"]
        assert sorted(await stored_ids(es, prefix)) == sorted(sent)
        # Each event is in the managed store, ES and Zabbix: the view has it once.
        deadline = time.monotonic() + 20
        while True:  # Zabbix shows values 0.4-1 s after it took them
            found, sources = await unified(gw.url, sources="zbx", site=site)
            if len(found) == len(sent) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert sorted(found) == sorted(sent)
        # Other tests' hosts may hold events too: this site's only.
        found, sources = await unified(gw.url, site=site)
        assert sorted(found) == sorted(sent)
        assert {name: s["status"] for name, s in sources.items()} == {
            "managed": "ok",
            "elk": "ok",
            "zbx": "ok",
        }
        # And one source alone, through POST /v1/query/external.
        async with httpx.AsyncClient(base_url=gw.url, timeout=30, headers=READ) as client:
            for source in ("elk", "zbx"):
                r = await client.post(
                    "/v1/query/external",
                    json={
                        "source": source,
                        "query": {"limit": 10, "business_key": "LOT-12345", "site_id": site},
                    },
                )
                assert r.status_code == 200, r.text
                page = r.json()
                assert len(page["events"]) == 10
                assert {e["event_id"] for e in page["events"]} <= set(sent)


def _stop_es() -> int:
    with open(os.environ["WAFERMON_TEST_ES_PIDFILE"]) as file:
        pid = int(file.read())
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        time.sleep(0.1)
    raise AssertionError("Elasticsearch did not stop within 30 s")


def _start_es() -> None:
    subprocess.run(
        [str(REPO / "scripts" / "services"), "start", "es"],
        check=True,
        capture_output=True,
        timeout=180,
    )


async def test_es_stopped_mid_run_and_started_again_loses_nothing(tmp_path, es, es_config, prefix):
    before, during = ndjson_batch(200, prefix="pre"), ndjson_batch(300, prefix="out")
    with processes() as procs:
        sc = sidecar(tmp_path, [es_backend(es_config, prefix)])
        procs.append(sc.start())
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{sc.url}/v1/ingest/events", content=before, headers=NDJSON)
            assert r.status_code == 202
            await drained(sc.url, ["elk"])
            await asyncio.to_thread(_stop_es)
            try:
                r = await client.post(f"{sc.url}/v1/ingest/events", content=during, headers=NDJSON)
                assert r.status_code == 202  # spooled: the sidecar answers while ES is down
                await asyncio.sleep(1.0)
                health = (await client.get(f"{sc.url}/v1/healthz", timeout=10)).json()
                assert health["backends"]["elk"]["lag"] > 0
            finally:
                await asyncio.to_thread(_start_es)
        await drained(sc.url, ["elk"])
    ids = await stored_ids(es, prefix)
    assert len(ids) == len(set(ids)), "duplicates in Elasticsearch"
    assert sorted(ids) == sorted(event_ids(before) + event_ids(during))
