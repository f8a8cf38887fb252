"""End to end: real ``wafermon sidecar`` processes forwarding to a real ``wafermon gateway`` on a
fresh PostgreSQL database, over real HTTP, with the sidecar killed, the gateway taken away, a
backend broken for good, the spool full, and events the store refuses.

Needs WAFERMON_TEST_PG_URL (scripts/test starts PostgreSQL and sets it); fails without it.
Each test checks the promise directly in PostgreSQL: every event the sidecar answered 202 for
is in the managed store, and exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from tests.helpers.sidecar import (
    FAST_RETRY,
    WAFERMON,
    Proc,
    event_ids,
    filesystem_event_ids,
    free_port,
    metric,
    ndjson_batch,
    processes,
    write_yaml,
)

INGEST = "/v1/ingest/events"
NDJSON = {"content-type": "application/x-ndjson"}
GW_TOKEN = "gw-ingest-token"


def plain(pg_url: str) -> str:
    return pg_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def stored(pg_url: str) -> tuple[int, int, set[str]]:
    """(rows in events, distinct event_ids in events, the ids) straight from PostgreSQL."""
    conn = await asyncpg.connect(plain(pg_url))
    try:
        rows = await conn.fetch("SELECT event_id::text AS id FROM events")
        gate = await conn.fetchval("SELECT count(*) FROM event_ids")
    finally:
        await conn.close()
    found = [r["id"] for r in rows]
    assert gate == len(set(found))  # the idempotency gate agrees with the table
    return len(found), len(set(found)), set(found)


async def assert_stored_once(pg_url: str, expected: list[str]) -> None:
    rows, distinct, found = await stored(pg_url)
    assert rows == distinct, f"{rows - distinct} duplicate event_id rows in events"
    missing = set(expected) - found
    assert not missing, f"{len(missing)} acknowledged events are missing from PostgreSQL"
    assert found == set(expected), f"{len(found - set(expected))} events nobody acknowledged"


def gateway(tmp_path: Path, pg_url: str, *, port: int | None = None, **settings) -> Proc:
    config = write_yaml(
        tmp_path / f"gateway-{port or 'any'}.yaml",
        {
            "site_id": "fab1",
            "gateway": {"tokens": {"ingest": GW_TOKEN}, **settings},
            "backends": [{"name": "managed", "type": "sql", "config": {"url": pg_url}}],
        },
    )
    return Proc("gateway", config, port=port, log_dir=tmp_path)


def sidecar(tmp_path: Path, backends: list[dict], **settings) -> Proc:
    config = write_yaml(
        tmp_path / "sidecar.yaml",
        {
            "site_id": "fab1",
            "sidecar": {"spool": {"dir": str(tmp_path / "spool")}, "retry": FAST_RETRY, **settings},
            "backends": backends,
        },
    )
    # A node that runs only a sidecar has only the plugins it uses installed; loading just those
    # makes each of the kill test's restarts as fast as there (1 s instead of 3-5 s here).
    plugins = {"WAFERMON_LOAD_PLUGINS": "hosts,gateway,filesystem"}
    return Proc("sidecar", config, log_dir=tmp_path, env=plugins)


def gateway_backend(url: str, name: str = "managed-gw", **extra) -> dict:
    return {"name": name, "type": "gateway", "config": {"url": url, "token": GW_TOKEN}, **extra}


def fs_backend(root: Path, name: str = "archive") -> dict:
    return {"name": name, "type": "filesystem", "config": {"root": str(root)}}


def health(url: str) -> dict:
    return httpx.get(f"{url}/v1/healthz", timeout=10).json()


async def drained(url: str, names: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            backends = (await asyncio.to_thread(health, url))["backends"]
            if all(backends[n]["lag"] == 0 for n in names):
                return
        assert time.monotonic() < deadline, f"not drained in {timeout}s: {backends}"
        await asyncio.sleep(0.2)


# -- 1. kill -9 -----------------------------------------------------------------------------------

TOTAL = 100_000
BATCH = 500
CLIENTS = 4
KILL_EVERY_S = 2.0
MIN_KILLS = 5


async def test_kill_9_while_clients_post_loses_nothing_and_stores_each_event_once(pg_url, tmp_path):
    """100,000 events in NDJSON batches of 500 from 4 clients; the sidecar is SIGKILLed 2 s
    after each start (also twice while it drains) and restarted on the same port and spool;
    clients retry what got no 202. Every acknowledged event ends in PostgreSQL exactly once,
    and in the filesystem backend at least once (a file cannot deduplicate).
    About 90 s on an idle 2-core machine (7-9 kills); slower when the machine is shared."""
    bodies = [ndjson_batch(BATCH, prefix=f"b{i}") for i in range(TOTAL // BATCH)]
    with processes() as procs:
        gw = gateway(tmp_path, pg_url).start()
        procs.append(gw)
        sc = sidecar(tmp_path, [gateway_backend(gw.url), fs_backend(tmp_path / "fs")])
        procs.append(sc.start())
        todo = list(range(len(bodies)))
        acked: list[int] = []
        failures = {"transport": 0, "503": 0}
        kills = kills_draining = 0
        posting = True

        async def client() -> None:
            async with httpx.AsyncClient(timeout=30, headers=NDJSON) as http:
                while todo:
                    i = todo.pop()
                    while True:
                        try:
                            r = await http.post(f"{sc.url}{INGEST}", content=bodies[i])
                        except httpx.TransportError:
                            failures["transport"] += 1
                            await asyncio.sleep(0.05)
                            continue
                        if r.status_code == 202:
                            assert r.json()["accepted"] == BATCH
                            acked.append(i)
                            break
                        assert r.status_code == 503, r.text
                        failures["503"] += 1
                        await asyncio.sleep(0.05)

        async def killer() -> None:
            nonlocal kills, kills_draining
            # Twice more while the spool drains, and at least MIN_KILLS in all: a faster
            # ingest must not make the test kill less.
            while posting or kills_draining < 2 or kills < MIN_KILLS:
                await asyncio.sleep(KILL_EVERY_S)
                kills_draining += not posting
                await asyncio.to_thread(sc.kill9)
                kills += 1
                await asyncio.to_thread(sc.start)

        began = time.monotonic()
        kill_task = asyncio.create_task(killer())
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        posting = False
        posted_s = time.monotonic() - began
        await kill_task
        await drained(sc.url, ["managed-gw", "archive"], timeout=150)
        took = time.monotonic() - began
        assert sc.terminate() == 0
        spool_check = await asyncio.to_thread(
            __import__("subprocess").run,
            [WAFERMON, "spool", "verify", str(tmp_path / "spool")],
            capture_output=True,
            text=True,
        )
    assert spool_check.returncode == 0, spool_check.stderr
    assert sorted(acked) == list(range(len(bodies)))
    expected = [eid for body in bodies for eid in event_ids(body)]
    await assert_stored_once(pg_url, expected)
    on_disk = filesystem_event_ids(tmp_path / "fs")
    assert set(on_disk) == set(expected)
    print(
        f"\nkill -9 test: {TOTAL} events, {kills} kills, posted in {posted_s:.1f}s, "
        f"all stored in {took:.1f}s; client retries: {failures}; filesystem copies "
        f"{len(on_disk)} ({len(on_disk) - len(expected)} redelivered after kills)"
    )
    assert kills >= MIN_KILLS


# -- 2. gateway outage ------------------------------------------------------------------------------


async def test_a_gateway_outage_loses_nothing_and_lag_rises_then_falls(pg_url, tmp_path):
    with processes() as procs:
        gw = gateway(tmp_path, pg_url).start()
        procs.append(gw)
        sc = sidecar(tmp_path, [gateway_backend(gw.url)])
        procs.append(sc.start())
        url = f"{sc.url}{INGEST}"

        def lag() -> float:
            text = httpx.get(f"{sc.url}/metrics").text
            return metric(text, "wafermon_sidecar_backend_lag_records", backend="managed-gw")

        before = [ndjson_batch(200) for _ in range(5)]
        for body in before:
            assert httpx.post(url, content=body, headers=NDJSON).status_code == 202
        await drained(sc.url, ["managed-gw"])
        assert lag() == 0

        assert gw.terminate() == 0  # the gateway goes away
        during, lags = [ndjson_batch(200) for _ in range(20)], []
        for body in during:
            assert httpx.post(url, content=body, headers=NDJSON).status_code == 202
            lags.append(lag())
        assert lags == sorted(lags)  # rising while it is down
        assert lags[-1] == 20
        deadline = time.monotonic() + 30
        while health(sc.url)["backends"]["managed-gw"]["breaker"] != "open":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        state = health(sc.url)
        assert state["status"] == "degraded"
        assert "ConnectError" in state["backends"]["managed-gw"]["last_error"]

        gw.start()  # back, same port, same database
        falling = []
        deadline = time.monotonic() + 60
        while (value := lag()) > 0:
            falling.append(value)
            assert time.monotonic() < deadline, falling
            await asyncio.sleep(0.05)
        assert health(sc.url)["status"] == "ok"
        text = httpx.get(f"{sc.url}/metrics").text
        assert metric(text, "wafermon_sidecar_backend_breaker_state", backend="managed-gw") == 0
        assert metric(text, "wafermon_sidecar_backend_retries_total", backend="managed-gw") >= 3
        delivered = metric(
            text, "wafermon_sidecar_backend_delivered_events_total", backend="managed-gw"
        )
        assert delivered == 25 * 200
    await assert_stored_once(pg_url, [e for body in before + during for e in event_ids(body)])


# -- 3. a backend broken for good -----------------------------------------------------------------


async def test_a_backend_broken_for_good_stalls_nobody_and_memory_stays_bounded(pg_url, tmp_path):
    not_a_dir = tmp_path / "not-a-dir"
    not_a_dir.write_text("a regular file where a backend's root directory should be")
    with processes() as procs:
        gw = gateway(tmp_path, pg_url).start()
        procs.append(gw)
        backends = [
            gateway_backend(gw.url),
            fs_backend(tmp_path / "fs"),
            gateway_backend(f"http://127.0.0.1:{free_port()}", name="dead-gw"),
            fs_backend(not_a_dir, name="bad-fs"),
        ]
        sc = sidecar(tmp_path, backends, drain_timeout="1s")
        procs.append(sc.start())
        url = f"{sc.url}{INGEST}"
        sent: list[bytes] = []

        async def post(rounds: int) -> None:
            async with httpx.AsyncClient(timeout=30, headers=NDJSON) as http:
                for _ in range(rounds):
                    body = ndjson_batch(BATCH)
                    assert (await http.post(url, content=body)).status_code == 202
                    sent.append(body)

        await post(4)  # warm up: connections, code paths, allocator
        await drained(sc.url, ["managed-gw", "archive"])
        rss_before = sc.rss_kb()
        await post(40)  # 20,000 events while two backends cannot take any
        await drained(sc.url, ["managed-gw", "archive"])
        rss_after = sc.rss_kb()
        await post(40)  # and 20,000 more: a bound, not a slower growth
        await drained(sc.url, ["managed-gw", "archive"])
        rss_end = sc.rss_kb()

        state = health(sc.url)
        assert state["status"] == "degraded"
        for name in ("dead-gw", "bad-fs"):
            broken = state["backends"][name]
            assert broken["breaker"] in ("open", "half_open")
            assert broken["lag"] == 84  # every record kept for it, none dropped
            assert broken["dead_lettered_events"] == 0
        assert "cannot prepare" in state["backends"]["bad-fs"]["last_error"]
        assert state["backends"]["managed-gw"]["delivered_events"] == 84 * BATCH
        assert sc.terminate() == 0
    print(
        f"\nsidecar RSS: {rss_before // 1024} MiB before, {rss_after // 1024} MiB after "
        f"20,000 events, {rss_end // 1024} MiB after 40,000 (two backends down)"
    )
    assert (rss_after - rss_before) < 60 * 1024
    assert (rss_end - rss_before) < 60 * 1024
    expected = [e for body in sent for e in event_ids(body)]
    await assert_stored_once(pg_url, expected)
    assert sorted(filesystem_event_ids(tmp_path / "fs")) == sorted(expected)


# -- 4. the spool cap -----------------------------------------------------------------------------


async def test_a_full_spool_refuses_with_503_and_every_acknowledged_event_arrives(pg_url, tmp_path):
    port = free_port()  # the gateway will listen here, later
    with processes() as procs:
        spool = {"max_bytes": "2MiB", "segment_bytes": "256KiB"}
        sc = sidecar(
            tmp_path,
            [gateway_backend(f"http://127.0.0.1:{port}")],
            spool={"dir": str(tmp_path / "spool"), **spool},
            max_body_bytes="512KiB",
        )
        procs.append(sc.start())
        url = f"{sc.url}{INGEST}"
        accepted, refused = [], []
        for _ in range(40):
            body = ndjson_batch(200)
            r = httpx.post(url, content=body, headers=NDJSON)
            if r.status_code == 503:
                refused.append(body)
                assert int(r.headers["retry-after"]) > 0
                assert "full" in r.json()["error"]
                if len(refused) == 3:
                    break
                continue
            assert r.status_code == 202
            accepted.append(body)
        assert len(refused) == 3, "the spool never filled up"
        assert 5 < len(accepted) < 20
        state = health(sc.url)
        assert state["spool"]["last_seq"] == len(accepted)  # the refused ones wrote nothing
        assert state["spool"]["bytes"] <= 2 * 2**20
        text = httpx.get(f"{sc.url}/metrics").text
        assert metric(text, "wafermon_sidecar_refused_requests_total", reason="spool_full") == 3

        procs.append(gateway(tmp_path, pg_url, port=port).start())  # the backend comes back
        await drained(sc.url, ["managed-gw"])
        later = ndjson_batch(200)
        assert httpx.post(url, content=later, headers=NDJSON).status_code == 202
        accepted.append(later)
        await drained(sc.url, ["managed-gw"])
        assert sc.terminate() == 0
    await assert_stored_once(pg_url, [e for body in accepted for e in event_ids(body)])


# -- 6. permanent rejects ---------------------------------------------------------------------------


async def test_events_the_store_refuses_end_in_the_dead_letter_file_with_the_reason(
    pg_url, tmp_path
):
    """PostgreSQL text cannot hold U+0000, so the managed store refuses an entity id holding
    one, for good; the gateway reports it rejected, the sidecar's router dead-letters exactly
    that event with the reason and delivers the rest of its batch."""
    with processes() as procs:
        gw = gateway(tmp_path, pg_url).start()
        procs.append(gw)
        sc = sidecar(tmp_path, [gateway_backend(gw.url)])
        procs.append(sc.start())
        good = ndjson_batch(5)
        poison = ndjson_batch(1, entity_id="lot-\u0000-7")
        r = httpx.post(f"{sc.url}{INGEST}", content=good + poison, headers=NDJSON)
        assert (r.status_code, r.json()["accepted"]) == (202, 6)
        await drained(sc.url, ["managed-gw"])
        state = health(sc.url)["backends"]["managed-gw"]
        assert (state["delivered_events"], state["dead_lettered_events"]) == (5, 1)
        assert state["breaker"] == "closed"
        assert sc.terminate() == 0
    (line,) = (tmp_path / "dead-letter" / "managed-gw.jsonl").read_text().splitlines()
    entry = orjson.loads(line)
    assert entry["backend"] == "managed-gw"
    assert entry["event"]["event_id"] == event_ids(poison)[0]
    assert "gateway rejected 1 event(s)" in entry["reason"]
    assert "U+0000" in entry["reason"]
    await assert_stored_once(pg_url, event_ids(good))


@pytest.fixture(autouse=True)
def _needs_wafermon_gateway_backend():
    """The forwarding backend is a separate distribution; say so plainly if it is missing."""
    try:
        import wafermon_backend_gateway  # noqa: F401
    except ImportError:
        pytest.fail(
            "wafermon-backend-gateway is not installed: "
            "uv pip install --system -e plugins/wafermon-backend-gateway"
        )
