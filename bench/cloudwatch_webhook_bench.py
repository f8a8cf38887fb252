"""CloudWatch, webhook and file-export benchmarks (issue 16). ``run(quick)`` like the others.

Each emitter gets what the sidecar's router delivers: a fresh EventBatch of spooled NDJSON
bytes per call (decoded inside only if the backend needs objects).

- cloudwatch_logs: events/s through CloudWatchEmitter (logs only: decode, encode, group by
  stream, sort, cut within the PutLogEvents limits, send) into moto_server, vs the bare
  ``put_log_events`` calls of the same pre-built batches on the same aiobotocore client.
  Needs WAFERMON_TEST_MOTO_ENDPOINT (``scripts/services start moto``).
- webhook: batches/s through WebhookEmitter (JSON body from the batch's lines, HMAC
  signature) into a local Starlette receiver on Hypercorn, vs a bare httpx POST of a
  pre-encoded body of the same batch to the same receiver.
- file_export_csv: events/s of the filesystem emitter with ``format: csv`` vs ``format:
  jsonl`` (same batches, fsync off so the figure is the format's own cost, not the disk's).
Every figure is a ratio to the baseline measured in the same run, the two sides' rounds
interleaved so that load from others on a shared machine hits both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
from run import sample_events

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


async def arates(
    works: dict[str, Callable[[], Awaitable[object]]], items: int, seconds: float, rounds: int
) -> dict[str, float]:
    """Median items/s of each work over ``rounds`` rounds of about ``seconds`` each, the works'
    rounds interleaved: a shared machine's slow moment hits every side alike."""
    rates: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(rounds):
        for name, work in works.items():
            done, began = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - began) < seconds or done == 0:
                await work()
                done += items
            rates[name].append(done / elapsed)
    return {name: statistics.median(found) for name, found in rates.items()}


async def cloudwatch_logs(seconds: float, rounds: int, batch_size: int) -> dict[str, object]:
    from wafermon_backend_cloudwatch.emitter import CloudWatchEmitter, CloudWatchSettings

    from wafermon import EventBatch, Secret, encode_event, encode_ndjson

    endpoint = os.environ.get("WAFERMON_TEST_MOTO_ENDPOINT")
    if not endpoint:
        raise RuntimeError('cloudwatch bench: run `eval "$(scripts/services start moto)"` first')
    tag = uuid.uuid4().hex[:8]
    settings = CloudWatchSettings(
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id=Secret("bench"),
        secret_access_key=Secret("bench"),
        log_group=f"/wafermon-bench-{tag}/{{site_id}}",
        metrics=False,
    )
    # Recent times: CloudWatch Logs refuses events older than 14 days.
    sample = sample_events(batch_size)
    shift = datetime.now(UTC) - timedelta(minutes=5) - sample[-1].time
    batch = [attrs.evolve(e, time=e.time + shift) for e in sample]
    emitter = CloudWatchEmitter("bench", settings)
    await emitter.start()
    await emitter.emit(batch)  # creates the group and stream
    spooled = encode_ndjson(batch)
    client = await emitter._clients.get("logs")
    request = {
        "logGroupName": f"/wafermon-bench-{tag}/fab1",
        "logStreamName": "wafer-process",
        "logEvents": [
            {"timestamp": int(e.time.timestamp() * 1000), "message": encode_event(e).decode()}
            for e in batch
        ],
    }
    found = await arates(
        {
            "emitter": lambda: emitter.emit(EventBatch.from_ndjson(spooled)),
            "bare": lambda: client.put_log_events(**request),
        },
        len(batch),
        seconds,
        rounds,
    )
    emitted, bare = found["emitter"], found["bare"]
    await emitter.close()
    return {
        "what": f"CloudWatchEmitter (logs only) into moto_server, batches of {len(batch)}",
        "events_per_s": round(emitted),
        "baseline_bare_put_log_events_events_per_s": round(bare),
        "ratio_to_baseline": round(emitted / bare, 3),
    }


@contextlib.asynccontextmanager
async def receiver():
    from hypercorn.asyncio import serve
    from hypercorn.config import Config
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def hook(request):
        await request.body()
        return Response("ok")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    import httpx

    url = f"http://127.0.0.1:{port}/hook"
    async with httpx.AsyncClient() as probe:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                await probe.post(url, content=b"{}")
                break
            await asyncio.sleep(0.05)
    try:
        yield url
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def webhook(seconds: float, rounds: int, batch_size: int) -> dict[str, object]:
    import httpx
    from wafermon_backend_webhook.emitter import WebhookEmitter, WebhookSettings

    from wafermon import EventBatch, Secret, encode_array, encode_ndjson

    batch = sample_events(batch_size)
    async with receiver() as url:
        emitter = WebhookEmitter(
            "bench", WebhookSettings(url=Secret(url), secret=Secret("bench-secret"))
        )
        await emitter.start()
        spooled = encode_ndjson(batch)
        body = b'{"events":' + encode_array(batch) + b"}"
        headers = {"Content-Type": "application/json"}
        async with httpx.AsyncClient() as http:
            found = await arates(
                {
                    "emitter": lambda: emitter.emit(EventBatch.from_ndjson(spooled)),
                    "bare": lambda: http.post(url, content=body, headers=headers),
                },
                1,
                seconds,
                rounds,
            )
        await emitter.close()
        emitted, bare = found["emitter"], found["bare"]
    return {
        "what": f"WebhookEmitter (signed JSON) into a local Starlette receiver, "
        f"{batch_size} events per batch",
        "batches_per_s": round(emitted, 1),
        "baseline_bare_httpx_post_batches_per_s": round(bare, 1),
        "ratio_to_baseline": round(emitted / bare, 3),
    }


async def file_export_csv(seconds: float, rounds: int, batch_size: int) -> dict[str, object]:
    from wafermon import EventBatch, encode_ndjson
    from wafermon_backend_filesystem import EmitterSettings, FilesystemEmitter

    batch = sample_events(batch_size)
    spooled = encode_ndjson(batch)
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-export-") as tmp:
        emitters = {
            fmt: FilesystemEmitter(
                "bench",
                EmitterSettings(
                    root=Path(tmp) / fmt,
                    format=fmt,
                    fsync=False,
                    rotate_bytes=2**40,
                    compress=False,
                ),
            )
            for fmt in ("jsonl", "csv")
        }
        for emitter in emitters.values():
            await emitter.start()
        rates = await arates(
            {
                fmt: lambda em=emitter: em.emit(EventBatch.from_ndjson(spooled))
                for fmt, emitter in emitters.items()
            },
            len(batch),
            seconds,
            rounds,
        )
        for emitter in emitters.values():
            await emitter.close()
    return {
        "what": f"filesystem emitter format csv vs jsonl, batches of {batch_size}, fsync off",
        "csv_events_per_s": round(rates["csv"]),
        "baseline_jsonl_events_per_s": round(rates["jsonl"]),
        "ratio_to_baseline": round(rates["csv"] / rates["jsonl"], 3),
    }


def run(quick: bool) -> dict[str, object]:
    seconds, rounds = (0.5, 3) if quick else (2.0, 5)
    out: dict[str, object] = {}
    for name, bench, size in (
        ("file_export_csv", file_export_csv, 1000),
        ("webhook", webhook, 100),
        ("cloudwatch_logs", cloudwatch_logs, 1000),
    ):
        print(f"bench {name} ...", file=sys.stderr, flush=True)
        out[name] = asyncio.run(bench(seconds, rounds, size))
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
