"""Emitter and consumer against the real broker: keys and order, bounded fetches, commits,
lag, dead letters, a broker that is not there."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from conftest import make_event
from wafermon_backend_kafka import (
    ConsumerSettings,
    EmitterSettings,
    KafkaConsumer,
    KafkaEmitter,
)
from wafermon_backend_kafka.emitter import group_lines

from wafermon import (
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_WHERE_HEADER,
    ConfigError,
    EventBatch,
    PermanentError,
    RetryableError,
    encode_ndjson,
)
from wafermon.plugins import Plugins


def test_plugin_registers_emitter_and_consumer_as_kafka():
    plugins = Plugins.discover()
    assert plugins.types("emitter")["kafka"].cls is KafkaEmitter
    assert plugins.types("consumer")["kafka"].cls is KafkaConsumer


def test_one_jobs_events_share_a_key_in_order_and_records_are_bounded():
    job = make_event(job="lot-7")
    sub = make_event(parent_id="lot-7", job="lot-7/w1")
    other = make_event(job="other")
    done = make_event(job="lot-7", kind="finished")
    records, too_big = group_lines(encode_ndjson([job, other, sub, done]), 1024 * 1024)
    assert too_big == []
    assert [k for k, _ in records] == [b"fab1/lot-7", b"fab1/other"]
    ids = [orjson.loads(line)["event_id"] for line in records[0][1].splitlines()]
    assert ids == [str(job.event_id), str(sub.event_id), str(done.event_id)]
    many = [make_event(job="big") for _ in range(50)]
    records, _ = group_lines(encode_ndjson(many), 4096)
    assert len(records) > 1
    assert all(len(body) <= 4096 for _, body in records)
    assert sum(len(body.splitlines()) for _, body in records) == 50


def test_settings_errors_name_the_field():
    with pytest.raises(ConfigError, match="dead_letter_topic"):
        EmitterSettings(topic="t", dead_letter_topic="t")
    with pytest.raises(ConfigError, match="username"):
        EmitterSettings(security_protocol="SASL_SSL")


async def test_emit_then_consume_commit_and_lag(kafka_config):
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config))
    consumer = KafkaConsumer("k", ConsumerSettings(**kafka_config, group="g1"))
    await emitter.start()
    try:
        events = [make_event(job=f"job{i % 20}") for i in range(300)]
        await emitter.emit(EventBatch.from_events(events))
        await consumer.start()
        seen: list[str] = []
        batches = 0
        while len(seen) < 300:
            batch = await consumer.fetch(7, timeout=5)
            assert 0 < len(batch.messages) <= 7  # bounded, never empty while data waits
            batches += 1
            for message in batch.messages:
                assert message.where.startswith(f"{kafka_config['topic']}/")
                seen += [orjson.loads(line)["event_id"] for line in message.body.splitlines()]
            await batch.commit()
        assert sorted(seen) == sorted(str(e.event_id) for e in events)
        assert batches >= 3  # 20 keys -> 20 records, 7 at a time
        assert sum((await consumer.lag()).values()) == 0
        assert (await consumer.fetch(10, timeout=0.5)).messages == []
    finally:
        await consumer.close()
        await emitter.close()


async def test_uncommitted_messages_come_again_to_the_group(kafka_config):
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config))
    await emitter.start()
    await emitter.emit([make_event(job="a"), make_event(job="b")])
    await emitter.close()
    first = KafkaConsumer("c1", ConsumerSettings(**kafka_config, group="g2"))
    await first.start()
    got = 0
    while got < 2:
        got += len((await first.fetch(10, timeout=5)).messages)
    assert sum((await first.lag()).values()) == 2
    await first.close()  # no commit
    second = KafkaConsumer("c2", ConsumerSettings(**kafka_config, group="g2"))
    await second.start()
    try:
        again = []
        while len(again) < 2:
            batch = await second.fetch(10, timeout=5)
            again += batch.messages
            await batch.commit()
        assert len(again) == 2
    finally:
        await second.close()


async def test_dead_letter_carries_reason_and_origin(kafka_config, bootstrap):
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config))
    await emitter.start()
    await emitter.emit([make_event(job="a")])
    await emitter.close()
    consumer = KafkaConsumer("c", ConsumerSettings(**kafka_config, group="g3"))
    await consumer.start()
    try:
        batch = await consumer.fetch(10, timeout=5)
        message = batch.messages[0]
        await batch.dead_letter(message, "$.kind: not one of the kinds")
        await batch.commit()
    finally:
        await consumer.close()
    reader = AIOKafkaConsumer(
        kafka_config["dead_letter_topic"],
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await reader.start()
    try:
        found = await reader.getmany(timeout_ms=5000)
        (record,) = [r for records in found.values() for r in records]
    finally:
        await reader.stop()
    headers = dict(record.headers)
    assert record.value == message.body
    assert headers[DEAD_LETTER_REASON_HEADER] == b"$.kind: not one of the kinds"
    assert headers[DEAD_LETTER_WHERE_HEADER] == message.where.encode()


async def test_an_event_too_big_for_a_record_is_refused_alone(kafka_config):
    emitter = KafkaEmitter("k", EmitterSettings(**kafka_config, max_record_bytes=2048))
    await emitter.start()
    try:
        big = make_event(job="big", metadata={"blob": "x" * 4000})
        small = make_event(job="small")
        with pytest.raises(PermanentError) as caught:
            await emitter.emit([small, big])
        assert caught.value.event_ids == [str(big.event_id)]
        assert emitter.records_sent == 1  # the small one went
    finally:
        await emitter.close()


async def test_no_broker_is_retryable(kafka_config, unused_tcp_port):
    settings = EmitterSettings(
        **{**kafka_config, "bootstrap_servers": [f"127.0.0.1:{unused_tcp_port}"]},
        request_timeout=2,
    )
    emitter = KafkaEmitter("k", settings)
    with pytest.raises(RetryableError):
        await asyncio.wait_for(emitter.start(), 30)
    await emitter.close()
