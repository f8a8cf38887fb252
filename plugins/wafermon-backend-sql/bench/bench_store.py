"""Ingest throughput and read latency of SqlStore at gateway scale.

    python plugins/wafermon-backend-sql/bench/bench_store.py URL [--jobs 100000]

URL is an empty database (``postgresql://...`` or ``sqlite+aiosqlite:///...``). Fills it with
jobs of ``events-per-job`` events each (started, progress..., finished or failed) spread over
the last 48 hours, then times entities() with the filters GET /v1/jobs offers, job_detail()
and query(), printing p50/p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from wafermon import App, Entity, ErrorInfo, Event, Metrics, Query
from wafermon.store import EntityQuery
from wafermon_backend_sql import Settings, SqlStore

SITES, APPS = ["fab1", "fab2", "fab3"], ["etch", "litho", "cmp", "implant", "metrology"]


def job_events(n: int, per_job: int, now: datetime, rng: random.Random) -> list[Event]:
    start = now - timedelta(seconds=rng.uniform(600, 48 * 3600))
    entity = Entity(type="job", id=f"job-{n}", business_key=f"LOT{n % 10_000}")
    app = App(name=APPS[n % len(APPS)], version="1.2")
    kinds = ["started"] + ["progress"] * (per_job - 2) + [rng.choice(["finished"] * 9 + ["failed"])]
    return [
        Event(
            event_id=uuid.uuid4(),
            kind=kind,
            time=start + timedelta(seconds=30 * i),
            site_id=SITES[n % len(SITES)],
            app=app,
            entity=entity,
            metrics=Metrics(progress=i / per_job, duration_s=30.0 * i, cpu_user_s=1.0),
            metadata={"recipe": f"R{n % 50}", "tool": f"T{n % 20}"},
            error=ErrorInfo(type="ToolFault", message="chamber pressure")
            if kind == "failed"
            else None,
        )
        for i, kind in enumerate(kinds)
    ]


async def timed(label: str, make_call, runs: int) -> None:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        await make_call()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"  {label:<38} p50 {statistics.median(samples):6.1f} ms   p95 {p95:6.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--events-per-job", type=int, default=10)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    store = SqlStore("bench", Settings(url=args.url))
    await store.start()
    rng, now = random.Random(7), datetime.now(UTC)
    # Interleave jobs so a batch holds parts of many jobs, as a sidecar's batches do.
    pending: list[Event] = []
    total, spent = 0, 0.0
    for n in range(args.jobs):
        pending += job_events(n, args.events_per_job, now, rng)
        if len(pending) >= args.batch * 4 or n == args.jobs - 1:
            rng.shuffle(pending)
            for lo in range(0, len(pending), args.batch):
                t = time.perf_counter()
                await store.ingest(pending[lo : lo + args.batch])
                spent += time.perf_counter() - t
            total += len(pending)
            pending = []
    print(f"ingest: {total:,} events in {spent:.1f}s = {total / spent:,.0f} events/s")
    if store.dialect.name == "postgresql":
        async with store.dialect.engine.begin() as conn:  # committed: statistics are transactional
            await conn.exec_driver_sql("ANALYZE")
    print(f"reads ({args.runs} runs each):")
    cursor = (await store.entities(EntityQuery())).next_cursor
    hour_ago = now - timedelta(hours=1)
    cases = {
        "jobs, default sort": EntityQuery(),
        "jobs, page 2 (cursor)": EntityQuery(cursor=cursor),
        "jobs, status=failed": EntityQuery(status="failed"),
        "jobs, status=running": EntityQuery(status="running"),
        "jobs, site_id=fab2": EntityQuery(site_id="fab2"),
        "jobs, app=litho, status=finished": EntityQuery(app="litho", status="finished"),
        "jobs, business_key=LOT42": EntityQuery(business_key="LOT42"),
        "jobs, last hour": EntityQuery(start=hour_ago),
        "jobs, sort=-updated_at": EntityQuery(sort="-updated_at"),
        "jobs, failed, limit 1000": EntityQuery(status="failed", limit=1000),
    }
    for label, query in cases.items():
        await timed(label, lambda q=query: store.entities(q), args.runs)
    ids = [f"job-{rng.randrange(args.jobs)}" for _ in range(args.runs)]
    it = iter(ids * 2)
    await timed("job_detail", lambda: store.job_detail(next(it)), args.runs)
    await timed("query(), last hour, 1000 events", lambda: store.query(Query(start=hour_ago)), 50)
    await timed(
        "query(), business_key", lambda: store.query(Query(business_key="LOT42")), args.runs
    )
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
