"""Real gateway processes consuming one JetStream stream into one PostgreSQL (gateway.streams).

Three ``wafermon gateway`` processes bind one durable pull consumer while a producer publishes;
one is killed with SIGKILL mid-run and started again; the NATS server itself is restarted
mid-run; a poison message is published among the events. Every time: each event stored
exactly once, the consumer's lag back to zero, the poison in the dead-letter stream with its
reason. Needs WAFERMON_TEST_PG_URL and nats-server (a private one here, since it is restarted).
"""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import nats
import pytest
from nats_helpers import make_events

from wafermon import DEAD_LETTER_REASON_HEADER, Seconds
from wafermon.testing import Proc, processes, wait_for, write_yaml
from wafermon_backend_nats.emitter import EmitterSettings, NatsEmitter

EVENTS = 20_000  # the bench session runs 200,000 (bench/nats_bench.py)
BATCH = 500


@pytest.fixture
async def pg():
    """A fresh PostgreSQL database: (asyncpg DSN, SQLAlchemy URL); dropped afterwards."""
    base = os.environ.get("WAFERMON_TEST_PG_URL")
    if not base:
        pytest.fail('WAFERMON_TEST_PG_URL is not set: run eval "$(scripts/services start pg)"')
    name = f"nats_gw_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = f"{base.rpartition('/')[0]}/{name}"
    yield dsn, dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    admin = await asyncpg.connect(base)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def gateway_config(tmp_path, url: str, sa_url: str, names: dict, n: int):
    stream = {
        "name": "events",
        "type": "nats",
        "max_in_flight": BATCH,
        "config": {
            "servers": [url],
            "ack_wait": "5s",  # a killed gateway's batch comes back after this
            "request_timeout": "10s",
            **names,
        },
    }
    return write_yaml(
        tmp_path / f"gateway-{n}.yaml",
        {
            "site_id": "fab1",
            "gateway": {"streams": [stream]},
            "backends": [{"name": "managed", "type": "sql", "config": {"url": sa_url}}],
        },
    )


async def stored(dsn: str) -> tuple[int, int]:
    """(rows, distinct event ids) in the managed store's events table."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT count(*), count(DISTINCT event_id) FROM events")
    finally:
        await conn.close()
    return row[0], row[1]


async def lag(url: str, names: dict) -> int:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        info = await nc.jetstream(timeout=5).consumer_info(names["stream"], "wafermon-gateway")
        return info.num_pending + info.num_ack_pending
    finally:
        await nc.close()


async def produce(url: str, names: dict, events, pause: float = 0.0) -> None:
    """Publish in batches as a sidecar would, retrying while the server is away."""
    own = {k: names[k] for k in ("stream", "subject_prefix")}
    emitter = NatsEmitter("producer", EmitterSettings(servers=[url], ack_timeout=Seconds(5), **own))
    try:
        for i in range(0, len(events), BATCH):
            for _ in range(200):
                try:
                    await emitter.emit(events[i : i + BATCH])
                    break
                except Exception:  # noqa: BLE001 - RetryableError while the server restarts
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the producer could not publish for 20 s")
            await asyncio.sleep(pause)
    finally:
        await emitter.close()


async def test_three_gateways_a_kill_and_a_poison_message(nats_server, tmp_path, pg, names):
    dsn, sa_url = pg
    server = nats_server()
    events = make_events(EVENTS)
    with processes() as running:
        gateways = []
        for n in range(3):
            config = gateway_config(tmp_path, server.url, sa_url, names, n)
            gateways.append(Proc("gateway", config, log_dir=tmp_path, ready=(200,)))
            running.append(gateways[-1].start())  # one by one: the first creates the schema
        producer = asyncio.create_task(produce(server.url, names, events, pause=0.01))

        nc = await nats.connect(server.url, connect_timeout=2)
        await asyncio.sleep(0.5)
        await nc.jetstream().publish(f"{names['subject_prefix']}.fab1.etch", b'{"not": "an event"}')
        await nc.close()

        await wait_for(lambda: rows_at_least(dsn, EVENTS // 4), 120)
        assert (await stored(dsn))[0] < EVENTS  # mid-run: most events are still to come
        gateways[1].kill9()  # mid-run: its fetched batch is neither stored-and-acked nor nak'ed
        await asyncio.sleep(1)
        gateways[1].start()
        await producer

        async def done() -> bool:
            return (await stored(dsn))[0] >= EVENTS and await lag(server.url, names) == 0

        await wait_for(done, 180, interval=0.5)
        health = [g.log() for g in gateways]
    rows, distinct = await stored(dsn)
    assert (rows, distinct) == (EVENTS, EVENTS)
    conn = await asyncpg.connect(dsn)
    ids = {str(r[0]) for r in await conn.fetch("SELECT event_id FROM events")}
    await conn.close()
    assert ids == {str(e.event_id) for e in events}

    nc = await nats.connect(server.url, connect_timeout=2)
    js = nc.jetstream()
    dead = await js.get_msg(names["dead_letter_stream"], 1)
    await nc.close()
    server.stop()
    assert dead.data == b'{"not": "an event"}'
    assert dead.headers[DEAD_LETTER_REASON_HEADER]
    assert all("Traceback" not in log for log in health)


async def rows_at_least(dsn: str, n: int) -> bool:
    try:
        return (await stored(dsn))[0] >= n
    except asyncpg.UndefinedTableError:
        return False


async def test_gateways_recover_from_a_nats_server_restart(nats_server, tmp_path, pg, names):
    dsn, sa_url = pg
    server = nats_server()
    events = make_events(6_000)
    with processes() as running:
        for n in range(2):
            config = gateway_config(tmp_path, server.url, sa_url, names, n)
            running.append(Proc("gateway", config, log_dir=tmp_path, ready=(200,)).start())
        producer = asyncio.create_task(produce(server.url, names, events, pause=0.02))
        await wait_for(lambda: rows_at_least(dsn, 1_000), 120)
        assert not producer.done()
        server.stop()  # producers and consumers lose the server mid-run
        await asyncio.sleep(2)
        server.start()  # same port, same store: stream and durable consumer are kept
        await producer

        async def done() -> bool:
            return (await stored(dsn))[0] >= len(events) and await lag(server.url, names) == 0

        await wait_for(done, 180, interval=0.5)
    server.stop()
    assert await stored(dsn) == (len(events), len(events))
