"""NATS JetStream transport (issue 20). Run through bench/run.py.

- nats_emit: events/s that ``NatsEmitter.emit`` gets acknowledged (batches of 1000 as the
  sidecar's router hands them over: an EventBatch of the spooled NDJSON bytes; one message per
  event on its site/app subject, Nats-Msg-Id = event_id, every PubAck awaited), as a ratio to
  nats-py's bare ``js.publish_async`` of the same bodies with the same headers and subjects
  (prepared up front, the same bound on publishes in flight, every PubAck awaited) into a
  stream of the same config, same run.

- nats_scaleout: events/s from sidecar -> NATS -> 1, 2 and 3 gateways -> PostgreSQL: the events
  POSTed to a real ``wafermon sidecar`` (NDJSON batches, 4 clients) whose backend is ``nats``,
  consumed by real ``wafermon gateway`` processes sharing one durable consumer
  (``gateway.streams``), timed from the first POST until the last event is in PostgreSQL and
  every event is checked present exactly once; as a ratio to the same volume POSTed straight to
  one gateway over HTTP (``/v1/ingest/managed``) in the same run. Plus, with 3 gateways, one
  killed with SIGKILL a third of the way in and started again: how long until the consumer's
  lag is back to 0 after the last event was published (its unacked batch waits out ack_wait).

Each figure is the median of the rounds; every round uses fresh event ids and a fresh stream.
Needs WAFERMON_TEST_NATS and WAFERMON_TEST_PG_URL (``scripts/services start nats pg``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from pathlib import Path

import nats
from es_zabbix_bench import fresh
from run import sample_events
from sidecar_bench import events_now
from streams import pipeline, scaleout

from wafermon import EventBatch, encode_event, encode_ndjson
from wafermon_backend_nats import subject_token
from wafermon_backend_nats.emitter import EmitterSettings, NatsEmitter

BATCH = 1000
SIDECAR_BATCH = 500  # events per POST to the sidecar
IN_FLIGHT = 1000  # the emitter's default max_in_flight, for both sides


async def _emit(count: int, rounds: int) -> dict[str, object]:
    url = os.environ["WAFERMON_TEST_NATS"]
    template = sample_events(count)
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=3)
    ours, theirs, streams = [], [], []
    try:
        for _ in range(rounds):
            # Ours: the emitter, as the sidecar's router drives it.
            tag = uuid.uuid4().hex[:8]
            settings = EmitterSettings(
                servers=[url], stream=f"BENCH_{tag}", subject_prefix=f"bench{tag}.events"
            )
            streams.append(settings.stream)
            emitter = NatsEmitter("bench", settings)
            await emitter.start()
            events = fresh(template)
            batches = [
                EventBatch.from_ndjson(encode_ndjson(events[i : i + BATCH]))
                for i in range(0, count, BATCH)
            ]
            started = time.perf_counter()
            for batch in batches:
                await emitter.emit(batch)
            ours.append(count / (time.perf_counter() - started))
            await emitter.close()

            # Baseline: bare publish_async of prepared messages into a stream of the same config.
            tag = uuid.uuid4().hex[:8]
            base = EmitterSettings(
                servers=[url], stream=f"BENCH_{tag}", subject_prefix=f"bench{tag}.events"
            )
            streams.append(base.stream)
            js = nc.jetstream(timeout=10, publish_async_max_pending=IN_FLIGHT)
            await js.add_stream(base.stream_config())
            prepared = [
                (
                    f"{base.subject_prefix}.{subject_token(e.site_id)}.{subject_token(e.app.name)}",
                    encode_event(e),
                    str(e.event_id),
                )
                for e in fresh(template)
            ]
            started = time.perf_counter()
            for i in range(0, count, BATCH):
                futures = [
                    await js.publish_async(subject, body, headers={"Nats-Msg-Id": msg_id})
                    for subject, body, msg_id in prepared[i : i + BATCH]
                ]
                await asyncio.gather(*futures)
            theirs.append(count / (time.perf_counter() - started))
    finally:
        js = nc.jetstream(timeout=10)
        for stream in streams:
            with contextlib.suppress(Exception):  # best effort clean-up of the shared server
                await js.delete_stream(stream)
        await nc.close()
    rate, baseline = statistics.median(ours), statistics.median(theirs)
    return {
        "what": f"NatsEmitter.emit, EventBatch of {BATCH} NDJSON lines, one message per event "
        "with Nats-Msg-Id, every PubAck awaited; nats-server 2.9 file storage, same host",
        "events": count,
        "rounds": rounds,
        "events_per_s": round(rate),
        "baseline": f"bare js.publish_async of the same prepared bodies/subjects/headers, "
        f"{IN_FLIGHT} in flight, PubAcks awaited per {BATCH}",
        "baseline_events_per_s": round(baseline),
        "ratio_to_baseline": round(rate / baseline, 3),
    }


# -- sidecar -> NATS -> gateways -> PostgreSQL (streams.py) ---------------------------------------


async def _lag(names: dict[str, str]) -> int:
    nc = await nats.connect(os.environ["WAFERMON_TEST_NATS"], connect_timeout=2)
    try:
        info = await nc.jetstream(timeout=5).consumer_info(names["stream"], "wafermon-gateway")
        return info.num_pending + info.num_ack_pending
    finally:
        await nc.close()


async def _pipeline(
    work: Path, bodies: list[bytes], gateways: int, kill: bool
) -> dict[str, object]:
    """One run of streams.pipeline on a fresh stream (and dead-letter stream)."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "stream": f"BENCH_{tag}",
        "subject_prefix": f"bench{tag}.events",
        "dead_letter_subject": f"bench{tag}.dead",
        "dead_letter_stream": f"BENCH_{tag}_DEAD",
    }
    servers = [os.environ["WAFERMON_TEST_NATS"]]
    return await pipeline(
        work,
        bodies,
        gateways,
        kill,
        label="nats",
        stream={
            "type": "nats",
            "max_in_flight": 1000,
            "config": {"servers": servers, "ack_wait": "10s", **names},
        },
        backend={
            "type": "nats",
            "config": {"servers": servers, **{k: names[k] for k in ("stream", "subject_prefix")}},
        },
        lag=lambda: _lag(names),
        lag_figure="lag_zero_after_last_publish_s",
    )


async def _scaleout(total: int) -> dict[str, object]:
    what = (
        f"sidecar -> NATS JetStream -> N wafermon gateways (one durable consumer) -> "
        f"PostgreSQL, {total} events POSTed in NDJSON batches of {SIDECAR_BATCH} by 4 "
        "clients; timed from the first POST to the last event in PostgreSQL"
    )

    def bodies() -> list[bytes]:
        return [encode_ndjson(events_now(SIDECAR_BATCH)) for _ in range(total // SIDECAR_BATCH)]

    return await scaleout("nats", what, total, bodies, _pipeline)


def run(quick: bool) -> dict[str, object]:
    count, rounds = (5_000, 3) if quick else (20_000, 5)
    out: dict[str, object] = {"nats_emit": asyncio.run(_emit(count, rounds))}
    out["nats_scaleout"] = asyncio.run(_scaleout(20_000 if quick else 200_000))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
