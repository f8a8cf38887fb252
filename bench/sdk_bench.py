"""Python SDK benchmarks (issue: wafermon-sdk). ``run(quick)`` is called like gateway_bench.run.

- Caller cost per event: the time a caller's thread spends in ``Monitored.tick`` (the hot path:
  clock, tuple, append to the queue) and in ``Client.emit_event`` of a wire dict, median and
  p99 per call, as ratios to a bare ``queue.SimpleQueue.put`` of a dict measured the same way
  in the same run. The shipper thread runs meanwhile (sending to a real sidecar), so its share
  of the GIL is in the figures, as it would be in an application.
- A job with 10,000 subjobs, each doing the same small CPU work: wall time with Monitored
  around every subjob vs the same loop without, same process, and the added µs per subjob.
- Shipper throughput: events/s from the first emit until ``flush`` returns, i.e. until a real
  ``wafermon sidecar`` (forwarding to a real gateway on SQLite) acknowledged every event.
Needs wafermon-hosts, wafermon-backend-sql and wafermon-backend-gateway installed.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from hosts import host
from wafermon_sdk import AppRef, Client, Monitored

APP = AppRef(app_id=uuid.uuid4(), name="wafer-process", version="2.1.0")


@contextlib.contextmanager
def sidecar_stack(workdir: Path) -> Iterator[str]:
    gateway_config = (
        "site_id: fab1\n"
        f"backends: [{{name: managed, type: sql, config: {{url: "
        f"'sqlite+aiosqlite:///{workdir / 'gw.db'}'}}}}]\n"
    )
    with host("gateway", gateway_config, workdir) as gateway:
        sidecar_config = (
            "site_id: fab1\n"
            f"sidecar: {{spool: {{dir: '{workdir / 'sidecar-spool'}'}}}}\n"
            f"backends: [{{name: gw, type: gateway, config: {{url: '{gateway}'}}}}]\n"
        )
        with host("sidecar", sidecar_config, workdir) as sidecar:
            yield sidecar


def per_call_ns(call: Callable[[], object], calls: int) -> list[int]:
    """Nanoseconds of each call, timed one by one (perf_counter_ns around each)."""
    clock = time.perf_counter_ns
    out = [0] * calls
    for i in range(calls):
        began = clock()
        call()
        out[i] = clock() - began
    return out


def summary(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered) / 1000, 3),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] / 1000, 3),
    }


def bench_caller_cost(client: Client, calls: int, rounds: int) -> dict[str, object]:
    baseline_queue: queue.SimpleQueue = queue.SimpleQueue()
    event = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "kind": "progress",
        "time": "2026-11-28T09:30:00Z",
        "site_id": "fab1",
        "app": {"name": "etch"},
        "entity": {"type": "job", "id": "lot-1"},
    }
    tick_runs, emit_runs, base_runs = [], [], []
    with Monitored(site_id="fab1", app=APP, client=client) as job:
        for _ in range(rounds):
            gc.collect()
            base_runs.append(summary(per_call_ns(lambda: baseline_queue.put({"n": 1}), calls)))
            while not baseline_queue.empty():
                baseline_queue.get_nowait()
            tick_runs.append(summary(per_call_ns(lambda: job.tick(progress=0.5), calls)))
            emit_runs.append(summary(per_call_ns(lambda: client.emit_event(event), calls)))
            assert client.flush(120), client.stats()

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    base_med, base_p99 = med(base_runs, "median_us"), med(base_runs, "p99_us")
    out: dict[str, object] = {
        "what": f"caller-thread cost per event, {calls} calls x {rounds} rounds, timed per call; "
        "shipper delivering to a real sidecar meanwhile",
        "baseline_simplequeue_put_median_us": base_med,
        "baseline_simplequeue_put_p99_us": base_p99,
        "target_median_us": 10,
    }
    for name, runs in (("tick", tick_runs), ("emit_event", emit_runs)):
        out[f"{name}_median_us"] = med(runs, "median_us")
        out[f"{name}_p99_us"] = med(runs, "p99_us")
        out[f"{name}_median_ratio_to_baseline"] = round(med(runs, "median_us") / base_med, 2)
        out[f"{name}_p99_ratio_to_baseline"] = round(med(runs, "p99_us") / base_p99, 2)
    stats = client.stats()
    out["dropped"] = stats["dropped"]
    return out


def work() -> int:
    return sum(i * i for i in range(300))  # ~15-20 µs of CPU, the stand-in for a subjob


def bench_subjobs(client: Client, subjobs: int, rounds: int) -> dict[str, object]:
    def plain() -> float:
        began = time.perf_counter()
        for _ in range(subjobs):
            work()
        return time.perf_counter() - began

    def instrumented() -> float:
        began = time.perf_counter()
        with Monitored(site_id="fab1", app=APP, client=client, business_key="bench") as job:
            for n in range(subjobs):
                with Monitored(
                    site_id="fab1",
                    app=APP,
                    client=client,
                    entity_type="subjob",
                    parent_id=job.entity_id,
                    sub_key=f"wafer-{n}",
                ):
                    work()
        took = time.perf_counter() - began
        assert client.flush(120)
        return took

    plain_s, instrumented_s = [], []
    for _ in range(rounds):
        plain_s.append(plain())
        instrumented_s.append(instrumented())
    p, i = statistics.median(plain_s), statistics.median(instrumented_s)
    return {
        "what": f"one job with {subjobs} subjobs (~{p / subjobs * 1e6:.0f} µs of work each), "
        f"median of {rounds} rounds; events shipped to a real sidecar meanwhile",
        "uninstrumented_s": round(p, 4),
        "instrumented_s": round(i, 4),
        "ratio": round(i / p, 3),
        "added_us_per_subjob": round((i - p) / subjobs * 1e6, 2),
        "events": 2 + 2 * subjobs,
    }


def bench_throughput(client: Client, events: int, rounds: int) -> dict[str, object]:
    rates = []
    for _ in range(rounds):
        began = time.perf_counter()
        with Monitored(site_id="fab1", app=APP, client=client) as job:
            for _ in range(events - 2):
                job.tick(progress=0.5)
        assert client.flush(300)
        rates.append(events / (time.perf_counter() - began))
    stats = client.stats()
    return {
        "what": f"{events} events from emit until a real sidecar acknowledged all (flush), "
        f"NDJSON batches of {client.settings.batch_size}, median of {rounds} rounds",
        "events_per_s": round(statistics.median(rates)),
        "spooled": stats["spooled"],
        "dropped": stats["dropped"],
    }


def run(quick: bool) -> dict[str, object]:
    calls, rounds = (20_000, 3) if quick else (100_000, 5)
    subjobs = 10_000
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-sdk-") as tmp:
        work_dir = Path(tmp)
        os.environ.pop("WAFERMON_SDK_CONFIG", None)
        with sidecar_stack(work_dir) as sidecar:
            client = Client(
                sidecar_url=sidecar,
                site_id="fab1",
                spool_dir=str(work_dir / "sdk-spool"),
                queue_size=3 * calls + 2 * subjobs,
            )
            out: dict[str, object] = {}
            print("bench sdk_caller_cost ...", file=sys.stderr, flush=True)
            out["sdk_caller_cost"] = bench_caller_cost(client, calls, rounds)
            print("bench sdk_subjobs_overhead ...", file=sys.stderr, flush=True)
            out["sdk_subjobs_overhead"] = bench_subjobs(client, subjobs, 3 if quick else 5)
            print("bench sdk_shipper_throughput ...", file=sys.stderr, flush=True)
            out["sdk_shipper_throughput"] = bench_throughput(
                client, 20_000 if quick else 100_000, 3
            )
            client.close()
            return out


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
