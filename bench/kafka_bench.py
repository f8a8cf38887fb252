"""Kafka transport (issue 20). Run through bench/run.py.

- kafka_emit: events/s that ``KafkaEmitter.emit`` gets acknowledged (batches of 1000 as the
  sidecar's router hands them over: an EventBatch of the spooled NDJSON bytes, grouped into one
  record per site/root-job key, idempotent producer, acks=all, zstd), as a ratio to aiokafka's
  bare producer sending the same events one record per event (prepared bytes and keys, same
  producer settings, every delivery awaited per 1000) into a topic of the same config, same run.

- kafka_scaleout: events/s sidecar -> Kafka -> 1, 2 and 3 gateways -> PostgreSQL: the events
  POSTed to a real ``wafermon sidecar`` (NDJSON batches of 500, 4 clients) whose backend is
  ``kafka``, consumed by real ``wafermon gateway`` processes in one consumer group on a
  6-partition topic (``gateway.streams``), timed from the first POST until the last event is in
  PostgreSQL, every event checked present exactly once; as a ratio to the same volume POSTed
  straight to one gateway over HTTP (``/v1/ingest/managed``) in the same run. Plus, with 3
  gateways, one killed with SIGKILL a third of the way in and started again: seconds from the
  last POST until the group's lag is 0 (the killed member's partitions wait for its session to
  time out, then go to the others, which re-read from the last commit).

Events come from 600 jobs, so the keys spread over every partition. Needs WAFERMON_TEST_KAFKA
and WAFERMON_TEST_PG_URL (``scripts/services start kafka pg``).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from streams import pipeline, scaleout

from wafermon import EventBatch

# The Kafka plugin's test helpers (events over many jobs, group lag, PostgreSQL counts): one copy.
sys.path.insert(
    0, str(Path(__file__).resolve().parents[1] / "plugins/wafermon-backend-kafka/tests")
)
from kafka_helpers import chunks, group_lag, ndjson_events
from wafermon_backend_kafka import EmitterSettings, KafkaEmitter
from wafermon_backend_kafka.emitter import group_lines

BATCH = 1000
SIDECAR_BATCH = 500  # events per POST to the sidecar
SESSION_TIMEOUT = "6s"  # the gateways' consumer session: how soon a killed member is noticed


def _topic_config(tag: str) -> dict[str, object]:
    return {
        "bootstrap_servers": [os.environ["WAFERMON_TEST_KAFKA"]],
        "topic": f"bench-{tag}",
        "dead_letter_topic": f"bench-{tag}-dead",
        "partitions": 6,
    }


async def _emit(count: int, rounds: int) -> dict[str, object]:
    ours, theirs = [], []
    for _ in range(rounds):
        # Ours: the emitter, as the sidecar's router drives it.
        emitter = KafkaEmitter("bench", EmitterSettings(**_topic_config(uuid.uuid4().hex[:8])))
        await emitter.start()
        batches = [EventBatch.from_ndjson(b) for b in chunks(ndjson_events(count), BATCH)]
        started = time.perf_counter()
        for batch in batches:
            await emitter.emit(batch)
        ours.append(count / (time.perf_counter() - started))
        await emitter.close()

        # Baseline: the bare producer, one record per event, same settings, topic created alike.
        config = _topic_config(uuid.uuid4().hex[:8])
        creator = KafkaEmitter("create", EmitterSettings(**config))
        await creator.start()
        await creator.close()
        lines = ndjson_events(count).splitlines()
        # The emitter's own key rule, one record per event.
        prepared = [group_lines(line + b"\n", 2**20)[0][0] for line in lines]
        producer = AIOKafkaProducer(
            bootstrap_servers=config["bootstrap_servers"],
            acks="all",
            enable_idempotence=True,
            compression_type="zstd",
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await producer.start()
        started = time.perf_counter()
        for i in range(0, count, BATCH):
            futures = [
                await producer.send(str(config["topic"]), value, key=key)
                for key, value in prepared[i : i + BATCH]
            ]
            await asyncio.gather(*futures)
        theirs.append(count / (time.perf_counter() - started))
        await producer.stop()
    rate, baseline = statistics.median(ours), statistics.median(theirs)
    return {
        "what": f"KafkaEmitter.emit, EventBatch of {BATCH} NDJSON lines over 500 jobs, one "
        "record per job key, idempotent, acks=all, zstd, every delivery awaited; Kafka 4.4 "
        "single KRaft node, same host",
        "events": count,
        "rounds": rounds,
        "events_per_s": round(rate),
        "baseline": f"bare AIOKafkaProducer.send of the same events, one record per event with "
        f"the same keys and settings, deliveries awaited per {BATCH}",
        "baseline_events_per_s": round(baseline),
        "ratio_to_baseline": round(rate / baseline, 3),
    }


# -- sidecar -> Kafka -> gateways -> PostgreSQL (streams.py) --------------------------------------


async def _pipeline(
    work: Path, bodies: list[bytes], gateways: int, kill: bool
) -> dict[str, object]:
    """One run of streams.pipeline on a fresh 6-partition topic, created up front."""
    topic = _topic_config(uuid.uuid4().hex[:8])
    creator = KafkaEmitter("create", EmitterSettings(**topic))
    await creator.start()
    await creator.close()
    consume = {**topic, "group": "bench", "session_timeout": SESSION_TIMEOUT}
    return await pipeline(
        work,
        bodies,
        gateways,
        kill,
        label="kafka",
        stream={"type": "kafka", "max_in_flight": 500, "config": consume},
        backend={"type": "kafka", "config": topic},
        lag=lambda: group_lag(os.environ["WAFERMON_TEST_KAFKA"], "bench", str(topic["topic"])),
        lag_figure="lag_zero_after_last_post_s",
    )


async def _scaleout(total: int) -> dict[str, object]:
    what = (
        f"sidecar -> Kafka (6 partitions) -> N wafermon gateways (one consumer group) -> "
        f"PostgreSQL, {total} events over 600 jobs POSTed in NDJSON batches of {SIDECAR_BATCH} "
        "by 4 clients; timed from the first POST to the last event in PostgreSQL"
    )

    def bodies() -> list[bytes]:
        return chunks(ndjson_events(total, jobs=600), SIDECAR_BATCH)

    return await scaleout("kafka", what, total, bodies, _pipeline)


def run(quick: bool) -> dict[str, object]:
    count, rounds = (5_000, 3) if quick else (20_000, 5)
    out: dict[str, object] = {"kafka_emit": asyncio.run(_emit(count, rounds))}
    out["kafka_scaleout"] = asyncio.run(_scaleout(20_000 if quick else 200_000))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
