"""Gateway benchmarks (issue: gateway + managed store). Run through bench/run.py.

- Batched HTTP ingest through a real `wafermon gateway` process into PostgreSQL, as a ratio to
  raw asyncpg ``copy_records_to_table`` of the same events; and into SQLite, as a ratio to raw
  sqlite3 ``executemany`` of the same rows. Same run, same machine, the two taking turns for
  ``ROUNDS`` rounds, each timed part starting with the disk settled (CHECKPOINT, sync).
- GET /v1/jobs with filters over a PostgreSQL store holding 100,000 jobs / 1,000,000 events:
  p50 and p95 latency over real HTTP.
Needs WAFERMON_TEST_PG_URL (scripts/test -s bench starts PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from hosts import host
from wafermon import App, Entity, ErrorInfo, Event, Metrics, encode_ndjson

BATCH = 1000


def pg_url() -> str:
    url = os.environ.get("WAFERMON_TEST_PG_URL")
    if not url:
        raise SystemExit("WAFERMON_TEST_PG_URL is not set: run `scripts/test -s bench`")
    return url


#: Databases this run created: dropped at its end (``drop_databases``), or repeated runs fill
#: the disk (a full run leaves gigabytes).
created_databases: list[str] = []


async def fresh_database(prefix: str) -> str:
    base = pg_url()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    created_databases.append(name)
    return base.rsplit("/", 1)[0] + "/" + name


async def drop_databases() -> None:
    """Drop the databases ``fresh_database`` created in this process."""
    if not created_databases:
        return
    conn = await asyncpg.connect(pg_url())
    try:
        while created_databases:
            name = created_databases.pop()
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def job_events(jobs: int, per_job: int, start: datetime) -> Iterator[Event]:
    """``jobs`` jobs of ``per_job`` events: started, progress..., finished or failed; job j
    starts ``j`` seconds after ``start``."""
    apps = [App(name=f"app-{n}", version="1.0") for n in range(5)]
    for j in range(jobs):
        entity = Entity(type="job", id=str(uuid.uuid4()), business_key=f"LOT-{j:07d}")
        app, t0 = apps[j % 5], start + timedelta(seconds=j)
        for i in range(per_job):
            kind = "started" if i == 0 else "progress"
            metrics = Metrics(progress=i / per_job)
            error = None
            if i == per_job - 1:
                kind = "failed" if j % 50 == 0 else "finished"
                metrics = Metrics(duration_s=float(per_job), cpu_user_s=1.0, mem_max_mb=100.0)
                error = ErrorInfo(type="E", message="chamber") if kind == "failed" else None
            yield Event(
                event_id=uuid.uuid4(),
                kind=kind,
                time=t0 + timedelta(milliseconds=i),
                site_id="fab1",
                app=app,
                entity=entity,
                metrics=metrics,
                metadata={"tool": f"etch-{j % 7}"},
                error=error,
            )


def recent_job_events(jobs: int, per_job: int) -> list[Event]:
    """``job_events`` that all happened in the last hours (job j starts j seconds apart)."""
    return list(job_events(jobs, per_job, datetime.now(UTC) - timedelta(hours=1, seconds=jobs)))


@contextlib.contextmanager
def gateway(store_url: str, workdir: Path) -> Iterator[str]:
    """A real `wafermon gateway` process on ``store_url``; yields its base URL."""
    config = (
        "site_id: fab1\n"
        "gateway: {store: managed, max_batch_events: 100000}\n"
        f"backends: [{{name: managed, type: sql, config: {{url: '{store_url}'}}}}]\n"
    )
    with host("gateway", config, workdir) as base:
        yield base


async def post_all(base: str, bodies: list[bytes], concurrency: int = 4) -> float:
    """Seconds to POST every body (NDJSON batches) with ``concurrency`` clients."""
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(
        base_url=base, timeout=120, headers={"Content-Type": "application/x-ndjson"}
    ) as client:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                response = await client.post("/v1/ingest/managed", content=body)
                response.raise_for_status()
                assert response.json()["rejected"] == 0

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began


def row(e: Event) -> tuple:
    body = encode_ndjson([e]).decode()
    return (
        e.event_id,
        e.time,
        e.kind,
        e.site_id,
        e.app.name,
        e.entity.type,
        e.entity.id,
        e.entity.parent_id,
        e.entity.business_key,
        e.entity.sub_key,
        datetime.now(UTC),
        body,
    )


BASELINE_DDL = """CREATE TABLE raw_events (event_id uuid PRIMARY KEY, time timestamptz,
    kind text, site_id text, app text, entity_type text, entity_id text, parent_id text,
    business_key text, sub_key text, received_at timestamptz, body jsonb)"""


#: Each ingest benchmark measures the gateway and its baseline this many times, taking turns
#: (the order flips every round), each time into a fresh database: the baseline alone moved
#: from 90,000 to 139,000 events/s between single runs on one evening, so one pair says little.
ROUNDS = 3


async def ingest_postgres(events: list[Event], workdir: Path) -> dict[str, object]:
    bodies = [encode_ndjson(events[i : i + BATCH]) for i in range(0, len(events), BATCH)]
    rows = [row(e) for e in events]

    async def through_gateway() -> float:
        with gateway(await fresh_database("wm_bench_gw"), workdir) as base:
            await post_all(base, bodies[:5])  # warm-up: connections, partitions
            await checkpoint()
            seconds = await post_all(base, bodies[5:])
        return (len(events) - 5 * BATCH) / seconds

    async def raw_copy() -> float:
        conn = await asyncpg.connect(await fresh_database("wm_bench_raw"))
        await conn.execute(BASELINE_DDL)
        await checkpoint()
        began = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            await conn.copy_records_to_table("raw_events", records=rows[i : i + BATCH])
        seconds = time.perf_counter() - began
        await conn.close()
        return len(rows) / seconds

    pairs = await take_turns(through_gateway, raw_copy)
    return {
        "what": f"HTTP ingest through `wafermon gateway` into PostgreSQL, NDJSON batches of "
        f"{BATCH}, 4 concurrent clients",
        **summary(pairs, "baseline_asyncpg_copy_records_events_per_s", "ratio_to_copy"),
        "target_ratio": 0.5,
        "events": len(events),
    }


async def ingest_sqlite(events: list[Event], workdir: Path) -> dict[str, object]:
    bodies = [encode_ndjson(events[i : i + BATCH]) for i in range(0, len(events), BATCH)]
    rows = [tuple(str(v) if v is not None else None for v in row(e)) for e in events]
    rounds = iter(range(2 * ROUNDS))

    async def through_gateway() -> float:
        db = workdir / f"gw-{next(rounds)}.db"
        with gateway(f"sqlite+aiosqlite:///{db}", workdir) as base:
            await post_all(base, bodies[:5])
            os.sync()  # the previous part's writes are not this part's to pay
            seconds = await post_all(base, bodies[5:])
        for path in workdir.glob(f"{db.name}*"):  # with its -wal and -shm
            path.unlink()
        return (len(events) - 5 * BATCH) / seconds

    async def raw_executemany() -> float:
        k = next(rounds)
        raw_db = sqlite3.connect(workdir / f"raw-{k}.db")
        raw_db.execute("PRAGMA journal_mode=WAL")
        raw_db.execute("PRAGMA synchronous=FULL")
        raw_db.execute(
            BASELINE_DDL.replace("uuid", "TEXT")
            .replace("timestamptz", "TEXT")
            .replace("jsonb", "TEXT")
        )
        os.sync()
        began = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            with raw_db:
                raw_db.executemany(
                    f"INSERT INTO raw_events VALUES ({','.join('?' * 12)})", rows[i : i + BATCH]
                )
        seconds = time.perf_counter() - began
        raw_db.close()
        for path in workdir.glob(f"raw-{k}.db*"):
            path.unlink()
        return len(rows) / seconds

    pairs = await take_turns(through_gateway, raw_executemany)
    return {
        "what": f"HTTP ingest through `wafermon gateway` into SQLite, NDJSON batches of {BATCH}, "
        f"4 concurrent clients",
        **summary(pairs, "baseline_sqlite3_executemany_events_per_s", "ratio_to_executemany"),
        "target_ratio": 0.5,
        "events": len(events),
    }


async def checkpoint() -> None:
    """Write PostgreSQL's dirty buffers out now, so that a timed part does not pay for the
    writes of the part before it."""
    conn = await asyncpg.connect(pg_url())
    await conn.execute("CHECKPOINT")
    await conn.close()


async def take_turns(
    measured: Callable[[], Awaitable[float]], baseline: Callable[[], Awaitable[float]]
) -> list[tuple[float, float]]:
    """(measured, baseline) events/s of ROUNDS rounds; the baseline goes first every other
    round, so neither always inherits the other's disk and cache state."""
    pairs = []
    for k in range(ROUNDS):
        if k % 2:
            rate = await measured()
            pairs.append((rate, await baseline()))
        else:
            base = await baseline()
            pairs.append((await measured(), base))
        print(f"  round {k + 1}: {pairs[-1][0]:,.0f} against {pairs[-1][1]:,.0f}", file=sys.stderr)
    return pairs


def summary(pairs: list[tuple[float, float]], baseline_key: str, ratio_key: str) -> dict:
    """Medians over the rounds; the ratio is the median of each round's own ratio."""
    ratios = [rate / base for rate, base in pairs]
    return {
        "events_per_s": round(statistics.median(rate for rate, _ in pairs)),
        baseline_key: round(statistics.median(base for _, base in pairs)),
        ratio_key: round(statistics.median(ratios), 3),
        "ratio_per_round": [round(r, 3) for r in ratios],
        "rounds": len(pairs),
    }


async def jobs_latency(jobs: int, per_job: int, workdir: Path, requests: int) -> dict[str, object]:
    from wafermon_backend_sql import SqlStore
    from wafermon_backend_sql.store import Settings

    url = await fresh_database("wm_bench_jobs")
    store = SqlStore("managed", Settings(url=url))
    await store.start()
    start = datetime.now(UTC) - timedelta(hours=24)
    began, chunk = time.perf_counter(), []
    for event in job_events(jobs, per_job, start):
        chunk.append(event)
        if len(chunk) == 5000:
            await store.ingest(chunk)
            chunk = []
    if chunk:
        await store.ingest(chunk)
    load_s = time.perf_counter() - began
    await store.close()
    print(f"  loaded {jobs * per_job} events in {load_s:.0f}s", file=sys.stderr)

    queries = {
        "status=failed": "/v1/jobs?status=failed&limit=100",
        "app": "/v1/jobs?app=app-3&limit=100",
        "business_key": "/v1/jobs?business_key=LOT-0054321",
        "since_1h": "/v1/jobs?since="
        + (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "page_2_of_app": None,
    }
    results: dict[str, object] = {}
    with gateway(url, workdir) as base, httpx.Client(base_url=base, timeout=30) as client:
        cursor = client.get("/v1/jobs?app=app-1&limit=100").json()["next_cursor"]
        queries["page_2_of_app"] = f"/v1/jobs?app=app-1&limit=100&cursor={cursor}"
        for label, path in queries.items():
            for _ in range(5):
                client.get(path).raise_for_status()  # warm caches
            times = []
            for _ in range(requests):
                t = time.perf_counter()
                client.get(path).raise_for_status()
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            results[label] = {
                "p50_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
            }
        # Baseline: a bare GET of the healthz-free openapi document, same server, same client.
        times = []
        for _ in range(requests):
            t = time.perf_counter()
            client.get("/openapi.json").raise_for_status()
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        results["baseline_openapi_json"] = {
            "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        }
    return {
        "what": f"GET /v1/jobs over real HTTP, PostgreSQL store with {jobs} jobs / "
        f"{jobs * per_job} events, {requests} requests each",
        "target_p95_ms": 50,
        "load_events_per_s_via_store": round(jobs * per_job / load_s),
        **results,
    }


def run(quick: bool, only: set[str] | None = None) -> dict[str, object]:
    """Every gateway benchmark, or those named in ``only``."""
    events = recent_job_events(2000 if quick else 20000, 10)
    jobs = 2000 if quick else 100_000
    benches = {
        "gateway_ingest_postgres": lambda work: ingest_postgres(events, work),
        "gateway_ingest_sqlite": lambda work: ingest_sqlite(events, work),
        "gateway_jobs_latency": lambda work: jobs_latency(jobs, 10, work, 50 if quick else 200),
    }
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-gw-") as tmp:
        work = Path(tmp)
        out: dict[str, object] = {}
        for name, bench in benches.items():
            if only is None or name in only:
                print(f"bench {name} ...", file=sys.stderr, flush=True)
                out[name] = asyncio.run(bench(work))
        return out
