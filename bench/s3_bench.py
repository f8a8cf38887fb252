"""S3 backend and archive benchmarks against the SeaweedFS and PostgreSQL of scripts/services.

Each figure comes with a baseline measured in the same run, on the same server and data:

- ``s3_emit``: S3Emitter events/s (group, encode to gzipped JSONL, name by digest, PUT)
  vs a bare ``put_object`` of the same bytes already encoded.
- ``s3_archive``: Archiver events/s from PostgreSQL to verified Parquet in S3 (read, encode,
  upload, read back and check, manifest, delete from the store) vs pyarrow writing the same
  rows to a local file.
- ``s3_unified_query``: first-page latency (p50/p95) of a 24 h query whose first half is
  archived and second half hot, store and archive asked at once and merged as the gateway
  does, vs the same query to the store alone.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from gateway_bench import fresh_database
from run import sample_events

from wafermon import Event, EventBatch, Query, Secret, encode_ndjson
from wafermon_backend_s3 import Archiver, ArchiveSettings, Bucket, S3Settings, formats, layout
from wafermon_backend_s3.adapter import AdapterSettings, S3QueryAdapter
from wafermon_backend_s3.emitter import EmitterSettings, S3Emitter
from wafermon_backend_sql import Settings, SqlStore


def s3_config() -> dict[str, Any]:
    names = ("ENDPOINT", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
    env = {n: os.environ.get(f"WAFERMON_TEST_S3_{n}") for n in names}
    if not all(env.values()):
        raise SystemExit('WAFERMON_TEST_S3_* are not set: eval "$(scripts/services start s3)"')
    return {
        "endpoint_url": env["ENDPOINT"],
        "region": "us-east-1",
        "path_style": True,
        "access_key_id": env["ACCESS_KEY_ID"],
        "secret_access_key": env["SECRET_ACCESS_KEY"],
    }


def retimed(events: list[Event], start: datetime, step: timedelta) -> list[Event]:
    import attrs

    return [attrs.evolve(e, time=start + i * step) for i, e in enumerate(events)]


async def new_bucket(config: dict[str, Any]) -> Bucket:
    name = f"wm-bench-{uuid.uuid4().hex[:12]}"
    bucket = Bucket(S3Settings(bucket=name, **config))
    await bucket.open()
    await bucket.client.create_bucket(Bucket=name)
    return bucket


async def drop_bucket(bucket: Bucket) -> None:
    await bucket.delete([o.key for o in await bucket.list_objects("")])
    await bucket.client.delete_bucket(Bucket=bucket.settings.bucket)
    await bucket.close()


async def emit(config: dict[str, Any], batches: int, rounds: int) -> dict[str, object]:
    bucket = await new_bucket(config)
    name = bucket.settings.bucket
    emitter = S3Emitter("s3", EmitterSettings(bucket=name, **config))
    await emitter.start()
    try:
        # One hour of events per batch: one object each, like a sidecar's steady state.
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
        data = [
            retimed(sample_events(5000), start + timedelta(hours=b), timedelta(milliseconds=500))
            for b in range(batches)
        ]
        # What a sidecar hands the emitter: the validated NDJSON it spooled, as an EventBatch.
        wire = [EventBatch.from_ndjson(encode_ndjson(b)) for b in data]
        encoded = [formats.gzip_bytes(b.ndjson) for b in wire]
        emit_rates, put_rates = [], []
        for _ in range(rounds):
            began = time.perf_counter()
            for batch in wire:
                await emitter.emit(batch)
            emit_rates.append(5000 * batches / (time.perf_counter() - began))
            began = time.perf_counter()
            for i, body in enumerate(encoded):
                await bucket.client.put_object(Bucket=name, Key=f"raw/{i}", Body=body)
            put_rates.append(5000 * batches / (time.perf_counter() - began))
        emitted, raw = statistics.median(emit_rates), statistics.median(put_rates)
        return {
            "what": "S3Emitter.emit of 5,000-event batches as a sidecar hands them (EventBatch of "
            "NDJSON) into gzipped JSONL objects, one each, vs put_object of the same gzipped "
            "bytes made beforehand, same client and server",
            "events_per_s": round(emitted),
            "baseline_put_object_events_per_s": round(raw),
            "ratio_to_baseline": round(emitted / raw, 3),
            "object_bytes": len(encoded[0]),
        }
    finally:
        await emitter.close()
        await drop_bucket(bucket)


async def archive(config: dict[str, Any], count: int) -> dict[str, object]:
    url = await fresh_database("wm_bench_s3")
    store = SqlStore("managed", Settings(url=Secret(url)))
    await store.start()
    bucket = await new_bucket(config)
    try:
        day = (datetime.now(UTC) - timedelta(days=5)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        events = retimed(sample_events(count), day, timedelta(seconds=80_000 / count))
        for start in range(0, count, 5000):
            await store.ingest(events[start : start + 5000])
        settings = ArchiveSettings(compact=False, chunk_rows=50_000)
        began = time.perf_counter()
        report = await Archiver(store, bucket, "wafermon", settings).run()
        archived = report.archived / (time.perf_counter() - began)
        assert report.archived == count, report
        # Baseline: the same rows (as the archiver gets them) written by pyarrow to a file.
        rows = await archived_rows(bucket)
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            pq.write_table(formats.sorted_table(rows), Path(tmp) / "x.parquet", compression="zstd")
            local = count / (time.perf_counter() - began)
        return {
            "what": f"Archiver pass over {count} PostgreSQL events (read, Parquet, upload, read "
            "back + verify, manifest, delete from the store) vs pyarrow.parquet.write_table of "
            "the same rows to a local file",
            "events_per_s": round(archived),
            "baseline_local_parquet_events_per_s": round(local),
            "ratio_to_baseline": round(archived / local, 4),
            "objects": report.objects,
        }
    finally:
        await store.close()
        await drop_bucket(bucket)


async def archived_rows(bucket: Bucket) -> pa.Table:
    """The archived rows read back as one table: the baseline writes exactly these."""
    tables = []
    for obj in await bucket.list_objects("wafermon/site="):
        if obj.key.endswith(layout.PARQUET):
            tables.append(pq.read_table(pa.BufferReader(await bucket.get(obj.key))))
    return pa.concat_tables(tables)


async def unified(config: dict[str, Any], count: int, repeats: int) -> dict[str, object]:
    url = await fresh_database("wm_bench_s3q")
    store = SqlStore("managed", Settings(url=Secret(url)))
    await store.start()
    bucket = await new_bucket(config)
    adapter = S3QueryAdapter("archive", AdapterSettings(bucket=bucket.settings.bucket, **config))
    await adapter.start()
    try:
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight - timedelta(hours=12)  # 12 h before midnight: archived; after: hot
        events = retimed(sample_events(count), start, timedelta(seconds=86_400 / count))
        events = [e for e in events if e.time < now]
        for i in range(0, len(events), 5000):
            await store.ingest(events[i : i + 5000])
        await Archiver(
            store, bucket, "wafermon", ArchiveSettings(hot_window=1, compact=False), now=now
        ).run()
        query = Query(start=start, end=start + timedelta(hours=24), limit=100)

        async def both() -> None:
            hot, cold = await asyncio.gather(store.query(query), adapter.query(query))
            merged = {e.event_id: e for e in [*cold.events, *hot.events]}
            assert len(sorted(merged.values(), key=lambda e: e.sort_key)[:100]) == 100

        async def hot_only() -> None:
            await store.query(query)

        timings: dict[str, list[float]] = {"unified": [], "hot": []}
        for _ in range(repeats):
            for name, work in (("unified", both), ("hot", hot_only)):
                began = time.perf_counter()
                await work()
                timings[name].append((time.perf_counter() - began) * 1000)

        def pct(values: list[float], p: float) -> float:
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

        u50, u95 = pct(timings["unified"], 0.5), pct(timings["unified"], 0.95)
        h50, h95 = pct(timings["hot"], 0.5), pct(timings["hot"], 0.95)
        return {
            "what": f"first page (100) of a 24 h query over {len(events)} events, the first 12 h "
            "archived: store and S3 archive at once, merged, vs the store alone (PostgreSQL); "
            "in-process, warm object cache",
            "unified_p50_ms": u50,
            "unified_p95_ms": u95,
            "baseline_hot_only_p50_ms": h50,
            "baseline_hot_only_p95_ms": h95,
            "ratio_p50_to_baseline": round(u50 / h50, 2),
            "ratio_p95_to_baseline": round(u95 / h95, 2),
        }
    finally:
        await adapter.close()
        await store.close()
        await drop_bucket(bucket)


def run(quick: bool) -> dict[str, object]:
    config = s3_config()
    out: dict[str, object] = {}
    print("bench s3_emit ...", file=sys.stderr, flush=True)
    out["s3_emit"] = asyncio.run(emit(config, 4 if quick else 10, 1 if quick else 3))
    print("bench s3_archive ...", file=sys.stderr, flush=True)
    out["s3_archive"] = asyncio.run(archive(config, 20_000 if quick else 100_000))
    print("bench s3_unified_query ...", file=sys.stderr, flush=True)
    out["s3_unified_query"] = asyncio.run(
        unified(config, 20_000 if quick else 50_000, 10 if quick else 40)
    )
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
