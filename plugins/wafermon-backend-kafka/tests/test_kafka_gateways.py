"""Real processes: gateways consuming one 6-partition topic as a group into one PostgreSQL.

- three gateways, a producer sending WAFERMON_KAFKA_TEST_EVENTS events (20,000 by default;
  the bench runs 200,000), one gateway killed with SIGKILL mid-run and started again: every
  event stored exactly once (count(*) = count(DISTINCT event_id) = sent), group lag back to 0;
- the broker restarted mid-run (scripts/services, same port and data): producer and gateway
  recover, nothing lost; a broker down longer than request_timeout makes emit fail
  retryably and replaces the producer;
- poison messages go to the dead-letter topic with the reason and do not block their
  partition; the good events around them are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka_helpers import (
    PLUGINS,
    all_healthy,
    chunks,
    gateway_site,
    group_lag,
    ndjson_events,
    restart_broker,
    start_broker,
    stop_broker,
    stored,
    wait_stored,
)
from tests.helpers.sidecar import Proc, metric, processes
from wafermon_backend_kafka import EmitterSettings, KafkaEmitter

from wafermon import DEAD_LETTER_REASON_HEADER, DEAD_LETTER_WHERE_HEADER, EventBatch, RetryableError

EVENTS = int(os.environ.get("WAFERMON_KAFKA_TEST_EVENTS", "20000"))


async def send_all(
    emitter: KafkaEmitter, bodies: list[bytes], *, pause: float = 0.0, progress=None
) -> int:
    """Emit each body, retrying (as the sidecar's router does) until the broker takes it;
    ``progress[0]`` counts the events acknowledged so far."""
    sent = 0
    for body in bodies:
        while True:
            try:
                await emitter.emit(EventBatch.from_ndjson(body))
                break
            except RetryableError:
                await asyncio.sleep(0.2)
        sent += body.count(b"\n")
        if progress is not None:
            progress[0] = sent
        await asyncio.sleep(pause)
    return sent


async def wait_lag_zero(bootstrap: str, topic: str, timeout: float = 60) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        lag = await group_lag(bootstrap, "gateways", topic)
        if lag == 0 or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(0.5)


async def test_three_gateways_one_killed_every_event_stored_once(
    tmp_path, pg, stream, kafka_config, bootstrap
):
    config = gateway_site(tmp_path / "gw.yaml", pg, stream)
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config))
    await emitter.start()  # creates the 6-partition topic
    with processes() as procs:
        gws = [Proc("gateway", config, log_dir=tmp_path, env=PLUGINS) for _ in range(3)]
        for gw in gws:
            procs.append(gw.start())
        bodies = chunks(ndjson_events(EVENTS, jobs=600), 500)
        producer = asyncio.create_task(send_all(emitter, bodies))
        await wait_stored(pg, EVENTS // 3, timeout=300)
        gws[1].kill9()
        await asyncio.sleep(1)
        gws[1].start()
        sent = await producer
        rows, distinct = await wait_stored(pg, EVENTS, timeout=300)
        assert sent == EVENTS
        assert (rows, distinct) == (EVENTS, EVENTS)
        assert await wait_lag_zero(bootstrap, kafka_config["topic"]) == 0
        await asyncio.sleep(2)  # no late repeats
        assert await stored(pg) == (EVENTS, EVENTS)
        # Each live gateway shows its own partitions' lag in health and /metrics.
        health = await all_healthy(gws)
        shown = {p for h in health for p in h["streams"]["events"]["lag"]}
        assert shown == {f"{kafka_config['topic']}/{p}" for p in range(6)}
        assert all(h["streams"]["events"]["lag_total"] == 0 for h in health)
        text = httpx.get(f"{gws[0].url}/metrics", timeout=10).text
        partition = next(iter(health[0]["streams"]["events"]["lag"]))
        assert (
            metric(text, "wafermon_gateway_stream_lag", stream="events", partition=partition) == 0
        )
        assert sum(
            metric(httpx.get(f"{gw.url}/metrics").text, "wafermon_gateway_stream_events_total",
                   stream="events", outcome="accepted") or 0
            for gw in gws
        ) <= EVENTS  # fmt: skip
        for gw in gws:
            assert gw.terminate() == 0  # SIGTERM: a clean stop
    await emitter.close()


async def test_broker_restart_mid_run_loses_nothing(tmp_path, pg, stream, kafka_config, bootstrap):
    total = 6000
    config = gateway_site(tmp_path / "gw.yaml", pg, stream)
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config, request_timeout=5))
    await emitter.start()
    with processes() as procs:
        procs.append(Proc("gateway", config, log_dir=tmp_path, env=PLUGINS).start())
        bodies = chunks(ndjson_events(total, jobs=100), 200)
        progress = [0]
        producer = asyncio.create_task(send_all(emitter, bodies, pause=0.2, progress=progress))
        while progress[0] < total // 4:
            await asyncio.sleep(0.05)
        at_restart = progress[0]
        away = await asyncio.to_thread(restart_broker)
        sent = await asyncio.wait_for(producer, 300)
        rows, distinct = await wait_stored(pg, total, timeout=180)
        assert sent == total
        assert (rows, distinct) == (total, total), f"broker away {away:.1f}s"
        assert await wait_lag_zero(bootstrap, kafka_config["topic"], timeout=90) == 0
        assert at_restart < total  # the producer was still sending when the broker went
    await emitter.close()


async def test_poison_messages_are_dead_lettered_and_do_not_block(
    tmp_path, pg, stream, kafka_config, bootstrap
):
    topic, dead = kafka_config["topic"], kafka_config["dead_letter_topic"]
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config))
    await emitter.start()
    await emitter.close()
    good = ndjson_events(30, jobs=1)
    bad_event = orjson.loads(ndjson_events(1, jobs=1))
    bad_event["kind"] = "exploded"
    mixed = ndjson_events(2, jobs=1) + orjson.dumps(bad_event) + b"\n"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        key = b"fab1/poison"  # one key: one partition, the poison before the good events
        await producer.send_and_wait(topic, b"\x00\xffnot json at all", key=key)
        await producer.send_and_wait(topic, None, key=key)  # a tombstone: no body at all
        await producer.send_and_wait(topic, mixed, key=key)
        for body in chunks(good, 10):
            await producer.send_and_wait(topic, body, key=key)
    finally:
        await producer.stop()
    with processes() as procs:
        gw = Proc("gateway", gateway_site(tmp_path / "gw.yaml", pg, stream), log_dir=tmp_path,
                  env=PLUGINS)  # fmt: skip
        procs.append(gw.start())
        assert await wait_stored(pg, 32, timeout=60) == (32, 32)  # 30 good + 2 of the mixed
        assert await wait_lag_zero(bootstrap, topic) == 0
        text = httpx.get(f"{gw.url}/metrics", timeout=10).text  # counters are live, not cached
        assert metric(text, "wafermon_gateway_stream_dead_letters_total", stream="events") == 3
        rejected = metric(
            text, "wafermon_gateway_stream_events_total", stream="events", outcome="rejected"
        )
        assert rejected == 2  # the non-JSON line and the bad kind
    reader = AIOKafkaConsumer(dead, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await reader.start()
    try:
        records = []
        deadline = time.monotonic() + 20
        while len(records) < 3 and time.monotonic() < deadline:
            found = await reader.getmany(timeout_ms=1000)
            records += [r for rs in found.values() for r in rs]
    finally:
        with contextlib.suppress(Exception):
            await reader.stop()
    assert [r.value for r in records] == [b"\x00\xffnot json at all", b"", mixed]
    reasons = [dict(r.headers)[DEAD_LETTER_REASON_HEADER].decode() for r in records]
    assert reasons[0].startswith("event 0 (None): $: not valid JSON")
    assert reasons[1].startswith("not an event, a JSON array or NDJSON: $: empty body")
    assert reasons[2].startswith("event 2 (")
    assert "kind" in reasons[2]
    where = [dict(r.headers)[DEAD_LETTER_WHERE_HEADER].decode() for r in records]
    assert len({w.split("@")[0] for w in where}) == 1  # one partition, offsets in order
    assert [int(w.split("@")[1]) for w in where] == [0, 1, 2]


async def test_store_down_nothing_committed_until_it_is_back(
    tmp_path, pg, stream, kafka_config, bootstrap
):
    """PostgreSQL refusing connections mid-run: the gateway commits nothing meanwhile (the
    group's lag stays), then stores every event once when the database is back."""
    import asyncpg

    topic = kafka_config["topic"]
    base, name = pg.rsplit("/", 1)
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config))
    await emitter.start()
    with processes() as procs:
        gw = Proc("gateway", gateway_site(tmp_path / "gw.yaml", pg, stream), log_dir=tmp_path,
                  env=PLUGINS)  # fmt: skip
        procs.append(gw.start())
        await send_all(emitter, chunks(ndjson_events(200, jobs=20), 100))
        assert await wait_stored(pg, 200, timeout=60) == (200, 200)
        assert await wait_lag_zero(bootstrap, topic) == 0
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            await send_all(emitter, chunks(ndjson_events(1000, jobs=50), 100))
            await asyncio.sleep(8)  # several fetch/store attempts
            assert await group_lag(bootstrap, "gateways", topic) > 0  # nothing committed
            health = httpx.get(f"{gw.url}/v1/healthz", timeout=10)
            assert health.status_code == 503  # the store is down
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            await admin.close()
        assert await wait_stored(pg, 1200, timeout=120) == (1200, 1200)
        assert await wait_lag_zero(bootstrap, topic) == 0
    await emitter.close()


async def test_sends_failing_while_the_broker_is_down_replace_the_producer(kafka_config):
    """The broker stays down past request_timeout: emit raises RetryableError (the router
    retries) and the failed producer is replaced; once the broker is back, emit delivers."""
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config, request_timeout=3))
    await emitter.start()
    body = ndjson_events(10, jobs=2)
    await emitter.emit(EventBatch.from_ndjson(body))
    stop_broker()
    try:
        with pytest.raises(RetryableError):
            await asyncio.wait_for(emitter.emit(EventBatch.from_ndjson(body)), 60)
        assert emitter.recreated >= 1
    finally:
        start_broker()
    assert await send_all(emitter, [body]) == 10
    await emitter.close()
