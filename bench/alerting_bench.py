"""Alert engine benchmarks (issue 19). ``run(quick)`` like the others.

- alerting_eval: one evaluation cycle of the gateway's engine (``Engine.cycle``: watermarks,
  the lease, reading the lookback window's runs, 10,000 monitors and a failure-rate rule,
  the diff against the stored alerts) over a SQLite store holding 1,000,000 events (500,000
  jobs, 50 runs of each of 10,000 apps over two days), as a ratio to ONE indexed query that
  returns the same rows (the entities table by ``start_time`` through the store's engine).
  ``--quick`` uses 1,000 monitors and 100,000 events (said in the figures).
- alerting_latency: a failed event POSTed to a real ``wafermon gateway`` process, to the real
  webhook notifier's POST arriving at a local receiver (median and p95 over 20 alerts), as a
  ratio to the same POST's own round trip (ingest alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

RUNS_PER_APP = 50


def _events(apps: int, start: datetime) -> list:
    from wafermon import App, Entity, ErrorInfo, Event, Metrics

    out = []
    for r in range(RUNS_PER_APP):
        for a in range(apps):
            began = start + timedelta(hours=r) + timedelta(seconds=a % 3600)
            job = f"a{a}-r{r}"
            failed = (a + r) % 97 == 0
            app, entity = App(name=f"app{a}"), Entity(type="job", id=job)
            out.append(
                Event(event_id=uuid.uuid4(), kind="started", time=began, site_id="fab1",
                      app=app, entity=entity)
            )  # fmt: skip
            out.append(
                Event(
                    event_id=uuid.uuid4(), kind="failed" if failed else "finished",
                    time=began + timedelta(minutes=5), site_id="fab1", app=app, entity=entity,
                    metrics=Metrics(duration_s=300.0, mem_max_mb=512.0),
                    error=ErrorInfo(type="Boom", message="x") if failed else None,
                )
            )  # fmt: skip
    return out


async def alerting_eval(quick: bool) -> dict[str, object]:
    import sqlalchemy as sa

    from wafermon import Secret
    from wafermon.config import make_config_converter
    from wafermon_backend_sql.alerts import SqlAlertState
    from wafermon_backend_sql.store import Settings, SqlStore
    from wafermon_hosts.gateway.alerting import Engine, ManualClock
    from wafermon_hosts.gateway.alerting.rules import BUILTIN
    from wafermon_hosts.gateway.alerting.settings import AlertingSettings

    apps = 1_000 if quick else 10_000
    start = datetime(2026, 11, 28, 0, tzinfo=UTC)
    now = start + timedelta(hours=RUNS_PER_APP)
    with tempfile.TemporaryDirectory(prefix="wafermon-alert-bench-") as root:
        store = SqlStore("managed", Settings(url=Secret(f"sqlite+aiosqlite:///{root}/a.db")))
        await store.start()
        events = _events(apps, start)
        began = time.perf_counter()
        for i in range(0, len(events), 10_000):
            await store.ingest(events[i : i + 10_000])
        load_s = time.perf_counter() - began
        settings = make_config_converter(Path(root)).structure(
            {
                "enabled": True,
                "stall_after": None,
                "monitors": [
                    {"name": f"m{a}", "app": f"app{a}", "schedule": {"every": "1h"},
                     "grace": "30m", "max_runtime": "1h"}
                    for a in range(apps)
                ],
                "rules": [{"name": "rate", "type": "failure_rate", "failures": 2, "of_last": 5}],
            },
            AlertingSettings,
        )  # fmt: skip
        from prometheus_client import CollectorRegistry

        state = SqlAlertState(store)
        engine = Engine(
            site_id="fab1", settings=settings, state=state, store=store, notifiers={},
            rule_types=dict(BUILTIN), registry=CollectorRegistry(), clock=ManualClock(now),
        )  # fmt: skip
        engine.run_loop = False
        await engine.start()
        engine.origin = start
        await engine.cycle()  # the first one writes the initial alerts
        cycles = []
        for _ in range(3 if quick else 5):
            began = time.perf_counter()
            await engine.cycle()
            cycles.append(time.perf_counter() - began)
        since = now - timedelta(seconds=settings.lookback)
        query = sa.text("SELECT * FROM entities WHERE entity_type = 'job' AND start_time >= :since")
        baselines, rows = [], 0
        for _ in range(3 if quick else 5):
            began = time.perf_counter()
            async with store.dialect.engine.connect() as conn:
                rows = len((await conn.execute(query, {"since": since.replace(tzinfo=None)})).all())
            baselines.append(time.perf_counter() - began)
        firing = len(await state.active_alerts())
        await engine.close()
        await store.close()
    cycle, base = statistics.median(cycles), statistics.median(baselines)
    return {
        "what": "one alert engine cycle vs one indexed query returning the same job rows",
        "store": "sqlite",
        "monitors": apps,
        "events": len(events),
        "jobs_read_per_cycle": rows,
        "alerts_firing": firing,
        "load_s": round(load_s, 1),
        "cycle_ms": round(cycle * 1000, 1),
        "baseline_query_ms": round(base * 1000, 1),
        "ratio": round(cycle / base, 2),
        "scale": "quick: 1,000 monitors, 100,000 events" if quick else "full",
    }


async def alerting_latency(quick: bool) -> dict[str, object]:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from wafermon import App, Entity, ErrorInfo, Event, encode_array
    from wafermon.testing import Proc, free_port, write_yaml
    from wafermon_hosts.common.serve import serve

    arrived: dict[str, float] = {}
    got = asyncio.Event()

    async def hook(request: Request) -> Response:
        import orjson

        body = orjson.loads(await request.body())
        arrived.setdefault(body["labels"]["app"], time.perf_counter())
        got.set()
        return Response("ok")

    port = free_port()
    stop = asyncio.Event()
    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    task = asyncio.create_task(serve(app, listen=f"127.0.0.1:{port}", stop=stop))
    await asyncio.sleep(0.5)
    count = 8 if quick else 20
    with tempfile.TemporaryDirectory(prefix="wafermon-alert-latency-") as root:
        config = write_yaml(
            Path(root) / "site.yaml",
            {
                "site_id": "fab1",
                "backends": [
                    {"name": "managed", "type": "sql",
                     "config": {"url": f"sqlite+aiosqlite:///{root}/w.db"}}
                ],
                "notifiers": [
                    {"name": "hook", "type": "webhook",
                     "config": {"url": f"http://127.0.0.1:{port}/hook"}}
                ],
                "gateway": {
                    "alerting": {
                        "enabled": True, "notifiers": ["hook"], "group_by": ["rule", "app"],
                        "rules": [{"name": "failed", "type": "failure_rate",
                                   "failures": 1, "of_last": 1}],
                    }
                },
            },
        )  # fmt: skip
        gateway = Proc("gateway", config, log_dir=Path(root)).start()
        latencies, ingest = [], []
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                await asyncio.sleep(1.0)  # the engine's first cycle
                for i in range(count):
                    name = f"app{i}"
                    now = datetime.now(UTC)
                    events = [
                        Event(event_id=uuid.uuid4(), kind=kind, time=now, site_id="fab1",
                              app=App(name=name), entity=Entity(type="job", id=f"j{i}"),
                              error=ErrorInfo(type="Boom", message="x") if kind == "failed"
                              else None)
                        for kind in ("started", "failed")
                    ]  # fmt: skip
                    body = encode_array(events)
                    began = time.perf_counter()
                    r = await http.post(
                        gateway.url + "/v1/ingest/managed", content=body,
                        headers={"Content-Type": "application/json"},
                    )  # fmt: skip
                    ingest.append(time.perf_counter() - began)
                    assert r.status_code == 200, r.text
                    deadline = time.monotonic() + 30
                    while name not in arrived:
                        assert time.monotonic() < deadline, "no notification within 30 s"
                        got.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(got.wait(), 1.0)
                    latencies.append(arrived[name] - began)
        finally:
            gateway.kill9()
    stop.set()
    await asyncio.wait_for(task, 10)
    latencies.sort()
    median, base = statistics.median(latencies), statistics.median(ingest)
    return {
        "what": "failed event POSTed to a gateway process -> webhook notification received",
        "alerts": count,
        "median_ms": round(median * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
        "ingest_post_ms": round(base * 1000, 1),
        "ratio_to_ingest_post": round(median / base, 2),
    }


def run(quick: bool) -> dict[str, object]:
    results = {}
    for name, bench in (("alerting_eval", alerting_eval), ("alerting_latency", alerting_latency)):
        print(f"bench {name} ...", file=sys.stderr, flush=True)
        results[name] = asyncio.run(bench(quick))
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
