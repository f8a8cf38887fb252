"""wafermon benchmarks. Every figure is reported with a baseline measured in the same run.

    nox -s bench                      # writes bench-results.json
    python bench/run.py --quick       # shorter rounds, for a smoke check

Machines here are shared and noisy, so each measurement is the median of several rounds and
the ratios to the baselines are the figures to compare between runs, not the raw rates.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import orjson

from wafermon import App, Entity, Event, Metrics, Source, decode_batch, encode_array, encode_ndjson

BATCH = 1000


def sample_events(count: int) -> list[Event]:
    """Realistic subjob progress events with every field group filled."""
    app = App(name="wafer-process", version="2.1.0", app_id=uuid4())
    start = datetime(2026, 11, 28, 8, tzinfo=UTC)
    job = str(uuid4())
    return [
        Event(
            event_id=uuid4(),
            kind="progress",
            time=start + timedelta(milliseconds=i),
            site_id="fab1",
            app=app,
            entity=Entity(
                type="subjob",
                id=str(uuid4()),
                parent_id=job,
                business_key="LOT-12345",
                sub_key=f"wafer-{i % 25:02d}",
            ),
            metrics=Metrics(
                duration_s=1.5,
                cpu_user_s=1.2,
                cpu_system_s=0.1,
                mem_max_mb=120.5,
                progress=(i % 100) / 100,
            ),
            metadata={"tool": "etch-07", "recipe": "POLY-ETCH-3", "customer": "ACME"},
            source=Source(host="node-17", pid=4242, sdk="python", sdk_version="0.1.0"),
        )
        for i in range(count)
    ]


def rate(work: Callable[[], object], items: int, seconds: float, rounds: int) -> float:
    """Median items/s over ``rounds`` rounds of about ``seconds`` each."""
    rates = []
    for _ in range(rounds):
        done, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds or done == 0:
            work()
            done += items
        rates.append(done / elapsed)
    return statistics.median(rates)


def bench_decode(seconds: float, rounds: int) -> dict[str, object]:
    body = encode_array(sample_events(BATCH))
    assert decode_batch(body).ok
    decode = rate(lambda: decode_batch(body), BATCH, seconds, rounds)
    stdlib = rate(lambda: json.loads(body), BATCH, seconds, rounds)
    fast = rate(lambda: orjson.loads(body), BATCH, seconds, rounds)
    return {
        "what": f"decode + validate JSON-array batches of {BATCH} events into Event objects",
        "events_per_s": round(decode),
        "baseline_json_loads_events_per_s": round(stdlib),
        "ratio_to_json_loads": round(decode / stdlib, 3),
        "baseline_orjson_loads_events_per_s": round(fast),
        "ratio_to_orjson_loads": round(decode / fast, 3),
        "target_events_per_s": 100_000,
        "bytes_per_event": len(body) // BATCH,
    }


def bench_wire_decode(seconds: float, rounds: int) -> dict[str, object]:
    """The ingest hot path's decoder against orjson building plain dicts of the same events."""
    from wafermon.wire import read_batch

    events = sample_events(BATCH)
    ndjson, array = encode_ndjson(events), encode_array(events)
    assert len(read_batch(ndjson).events) == BATCH
    figures: dict[str, float] = {}
    for _ in range(rounds):  # interleaved, so both see the same machine
        for name, work in (
            ("wire_ndjson", lambda: read_batch(ndjson)),
            ("wire_array", lambda: read_batch(array)),
            ("orjson_array", lambda: orjson.loads(array)),
            ("codec_ndjson", lambda: decode_batch(ndjson)),
        ):
            figures.setdefault(name, 0.0)
            figures[name] = max(figures[name], rate(work, BATCH, seconds, 1))
    return {
        "what": f"fast validating decode (wafermon.wire) of batches of {BATCH} events, keeping "
        "each event's bytes; best of the rounds, interleaved",
        "events_per_s_ndjson": round(figures["wire_ndjson"]),
        "events_per_s_array": round(figures["wire_array"]),
        "baseline_orjson_loads_to_dicts_events_per_s": round(figures["orjson_array"]),
        "ratio_ndjson_to_orjson_loads": round(figures["wire_ndjson"] / figures["orjson_array"], 3),
        "ratio_array_to_orjson_loads": round(figures["wire_array"] / figures["orjson_array"], 3),
        "detailed_codec_events_per_s": round(figures["codec_ndjson"]),
        "speedup_over_detailed_codec": round(figures["wire_ndjson"] / figures["codec_ndjson"], 2),
        "target": ">= 1.0x orjson.loads (issue 11)",
    }


def bench_filesystem(seconds: float, rounds: int) -> dict[str, object]:
    """The filesystem emitter given what the sidecar gives it: the spooled NDJSON bytes."""
    from wafermon import EventBatch
    from wafermon_backend_filesystem import FilesystemEmitter
    from wafermon_backend_filesystem.emitter import EmitterSettings

    ndjson = encode_ndjson(sample_events(BATCH))
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-") as tmp:
        emitter = FilesystemEmitter(
            name="bench", settings=EmitterSettings(root=Path(tmp) / "fs", rotate_bytes=2**40)
        )
        loop = asyncio.new_event_loop()
        loop.run_until_complete(emitter.start())

        def emit() -> None:
            loop.run_until_complete(emitter.emit(EventBatch.from_ndjson(ndjson, BATCH)))

        emitted = rate(emit, BATCH, seconds, rounds)
        loop.run_until_complete(emitter.close())
        loop.close()

        # Baseline: the same bytes appended and fsynced once per batch, nothing else.
        raw_path = Path(tmp) / "raw.jsonl"
        with raw_path.open("ab") as raw:

            def append_raw() -> None:
                raw.write(ndjson)
                raw.flush()
                os.fsync(raw.fileno())

            raw_rate = rate(append_raw, BATCH, seconds, rounds)
    return {
        "what": f"filesystem emitter, the sidecar's NDJSON batches of {BATCH}, one fsync per batch",
        "events_per_s": round(emitted),
        "baseline_write_fsync_events_per_s": round(raw_rate),
        "ratio_to_baseline": round(emitted / raw_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-results.json")
    parser.add_argument("--quick", action="store_true", help="short rounds (smoke check)")
    parser.add_argument(
        "--skip-gateway",
        action="store_true",
        help="only the in-process benchmarks (no PostgreSQL needed; skips the sidecar too)",
    )
    parser.add_argument(
        "--skip-sidecar", action="store_true", help="leave out the sidecar benchmarks"
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated benchmarks to run, e.g. gateway_ingest_postgres or decode; a "
        "suite's module name (sidecar_bench) runs the whole suite",
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    seconds, rounds = (0.3, 3) if args.quick else (2.0, 5)
    results: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "method": f"median of {rounds} rounds of ~{seconds}s; one process, one core",
    }
    for name, bench in (
        ("decode", bench_decode),
        ("wire_decode", bench_wire_decode),
        ("filesystem_emit", bench_filesystem),
    ):
        if only is not None and name not in only:
            continue
        print(f"bench {name} ...", file=sys.stderr, flush=True)
        results[name] = bench(seconds, rounds)
        print(json.dumps(results[name], indent=2), file=sys.stderr)
    # Host-level benchmarks: need the hosts, backends, SDK and dashboard installed, PostgreSQL
    # (scripts/test -s bench starts it) and, for the sidecar, wrk.
    suites = [] if args.skip_gateway else ["gateway_bench", "sdk_bench", "central_bench"]
    if not args.skip_gateway:
        suites.append("s3_bench")  # needs SeaweedFS and PostgreSQL (scripts/services start s3 pg)
    if not args.skip_gateway:
        suites.append("cloudwatch_webhook_bench")  # needs moto (scripts/services start moto)
    if not args.skip_gateway:
        suites.append("notifier_bench")  # the webhook notifier into a local receiver
    if not args.skip_gateway:
        suites.append("alerting_bench")  # engine cycle (1M events) and failure->notification
    if not args.skip_gateway:
        suites.append("es_zabbix_bench")  # needs scripts/services start es zabbix
    if not args.skip_gateway and not args.skip_sidecar:
        suites.append("nats_bench")  # needs scripts/services start nats pg (sidecar, gateways)
        suites.append("kafka_bench")  # needs scripts/services start kafka pg (sidecar, gateways)
    if not args.skip_gateway and not args.skip_sidecar:
        suites.insert(1, "sidecar_bench")
        suites.append("c_sdk_bench")  # needs cmake and the C SDK's build dependencies
        suites.append("java_sdk_bench")  # needs a JDK 17 and Maven (sdk-java/)
        suites.append("sdk_r_bench")  # needs R and the Debian r-cran-* packages (scripts/test)
        suites.append("sdk_perl_bench")  # needs perl (sdk-perl/bench/bench.pl)
    try:
        run_suites(suites, only, args.quick, results)
    finally:
        if "gateway_bench" in sys.modules:  # it made the databases, and knows them
            asyncio.run(sys.modules["gateway_bench"].drop_databases())
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


def run_suites(suites: list[str], only: set[str] | None, quick: bool, results: dict) -> None:
    """Each host-level suite's figures into ``results``, as the suite finishes."""
    for suite in suites:
        if suite == "gateway_bench" and only is not None and suite not in only:
            names = {n for n in only if n.startswith("gateway_")}
            if not names:
                continue
            ran = importlib.import_module(suite).run(quick, only=names)
        elif suite == "sidecar_bench" and only and any(n.startswith("sidecar_end") for n in only):
            ran = importlib.import_module(suite).run_end_to_end(quick, only)
        elif only is not None and suite not in only:
            continue
        else:
            ran = importlib.import_module(suite).run(quick)
        for name, figures in ran.items():
            results[name] = figures
            print(json.dumps(figures, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
