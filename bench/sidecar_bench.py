"""Sidecar benchmarks (issue: sidecar). Run through bench/run.py.

- Single-event POST /v1/ingest/events through a real `wafermon sidecar` process (spool fsync,
  delivery to a filesystem backend running in the same process), 16 concurrent connections:
  requests/s and p50/p99 latency, as a ratio to a bare Starlette endpoint on the same Hypercorn
  setup that reads the body and answers 202, measured in the same run with the same load; also
  each server's CPU per request (from /proc), whose ratio other work on the machine skews less.
- Batched durable ingest (NDJSON batches of 500): events/s, once with the router idle (the only
  backend is unreachable and its circuit open: the ingest path alone) and once delivering
  everything to a filesystem backend at the same time (one process, one GIL: the real case),
  accepted and sustained (until the backend has it all).
- Sidecar RSS, sampled during the batched run with delivery.
- End to end sidecar -> `wafermon gateway` -> PostgreSQL: events/s from the first POST until
  the last event is in PostgreSQL, every event checked present exactly once; as a ratio to
  POSTing the same volume straight to a gateway.

Load generator: wrk (C, epoll, one thread, keep-alive connections; `apt-get install wrk`).
A Python client (httpx) costs more CPU per request than the servers measured here and would
share their two cores, so the figures would measure the client; wrk does not. Each request of
the single-event run carries a fresh event_id (a Lua script). wrk is closed-loop: latencies
are those of 16 connections kept busy, i.e. at saturation.
Needs WAFERMON_TEST_PG_URL for the end-to-end part (scripts/test -s bench starts PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
from gateway_bench import fresh_database, pg_url, post_all, recent_job_events
from run import sample_events

from hosts import free_port
from wafermon import Event, encode_ndjson, to_json_dict

BATCH = 500
CONNECTIONS = 16

BARE_APP = """
import sys
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from wafermon_hosts.common.serve import run

async def ingest(request):
    await request.body()
    return Response(b'{"accepted":1}', status_code=202, media_type="application/json")

run(Starlette(routes=[Route("/v1/ingest/events", ingest, methods=["POST"])]), listen=sys.argv[1])
"""

# The single-event run's floor: what a durable accept costs on the same Hypercorn setup with
# nothing else, a plain ASGI callable (no Starlette) appending each body to the sidecar's own
# spool through its group commit (one fsync for the requests waiting) before answering 202.
# No checks, no auth, no log line, no metrics: the sidecar cannot be faster than this, so its
# ratio to the bare app bounds the sidecar's.
FLOOR_APP = """
import sys
from wafermon.spool import GroupCommit, Spool
from wafermon_hosts.common.serve import run

spool = Spool(sys.argv[2], ["none"], max_bytes=2**34)
commit = None
ANSWER = [(b"content-type", b"application/json")]

async def app(scope, receive, send):
    global commit
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            commit = GroupCommit(spool)
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    await commit.append(body + b"\\n")
    await send({"type": "http.response.start", "status": 202, "headers": ANSWER})
    await send({"type": "http.response.body", "body": b'{"accepted":1,"rejected":0}'})

run(app, listen=sys.argv[1])
"""

# The batched runs' baseline: the same server reads the body, appends it to a file and fsyncs
# before answering 202 (durable, but nothing checked, nothing else kept). One fsync per request:
# what a durable accept costs without group commit, validation or bookkeeping.
DURABLE_APP = """
import os, sys
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from wafermon_hosts.common.serve import run

log = open(sys.argv[2], "ab", buffering=0)

async def ingest(request):
    log.write(await request.body())
    os.fsync(log.fileno())
    return Response(b'{"accepted":500}', status_code=202, media_type="application/json")

run(Starlette(routes=[Route("/v1/ingest/events", ingest, methods=["POST"])]), listen=sys.argv[1])
"""

# One event per request, each with a fresh event_id (the sidecar does not deduplicate, but a
# realistic stream does not repeat ids).
SINGLE_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local template = [==[%s]==]
local r = math.random
math.randomseed(%d)
request = function()
  local id = string.format("%%04x%%04x-%%04x-4%%03x-%%04x-%%04x%%04x%%04x",
    r(0, 65535), r(0, 65535), r(0, 65535), r(0, 4095), r(32768, 49151),
    r(0, 65535), r(0, 65535), r(0, 65535))
  return wrk.format(nil, nil, nil, (string.gsub(template, "EVENT_ID", id)))
end
"""

BATCH_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-ndjson"
local f = io.open("%s", "rb")
wrk.body = f:read("*a")
f:close()
"""


def events_now(count: int) -> list[Event]:
    """``sample_events`` moved to the last minutes: inside the managed store's hot window."""
    import attrs

    start = datetime.now(UTC) - timedelta(minutes=10)
    return [
        attrs.evolve(e, time=start + timedelta(microseconds=i))
        for i, e in enumerate(sample_events(count))
    ]


def _wafermon() -> str:
    return shutil.which("wafermon") or sys.exit("the wafermon command is not installed")


def _wrk() -> str:
    return shutil.which("wrk") or sys.exit("wrk is not installed: apt-get install -y wrk")


def _wait_http(url: str, proc: subprocess.Popen, log: Path, path: str = "/v1/healthz") -> None:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url + path, timeout=1)
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{url} did not start; see {log}")
        time.sleep(0.1)


@contextlib.contextmanager
def process(
    args: list[str],
    url: str,
    log: Path,
    probe: str = "/v1/healthz",
    env: dict[str, str] | None = None,
) -> Iterator[int]:
    """A server process; yields its pid once it answers, SIGTERM at the end."""
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_http(url, proc, log, probe)
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def sidecar(work: Path, backends: list[dict], tag: str) -> tuple[list[str], str, Path]:
    port = free_port()
    config = work / f"sidecar-{tag}.yaml"
    config.write_text(
        orjson.dumps(  # JSON is YAML
            {
                "site_id": "fab1",
                "sidecar": {
                    "listen": f"127.0.0.1:{port}",
                    "spool": {"dir": str(work / f"spool-{tag}"), "max_bytes": "16GiB"},
                    "retry": {"open_seconds": "1h"},
                    "drain_timeout": "1s",
                },
                "backends": backends,
            }
        ).decode()
    )
    return (
        [_wafermon(), "sidecar", "--config", str(config)],
        f"http://127.0.0.1:{port}",
        work / f"sidecar-{tag}.log",
    )


def wrk(url: str, script: Path, seconds: float, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            _wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "p50_ms": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out)[1]),
        "p99_ms": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out)[1]),
        "non_2xx": int(bad[1]) if bad else 0,
        "socket_errors": errors[1].strip() if errors else "",
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def cpu_s(pid: int, *, main_thread: bool = False) -> float:
    """CPU seconds (user + system) a process has used so far: all its threads, or only its
    main thread (where a host's event loop runs)."""
    stat = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_cpu(pid: int, url: str, script: Path, seconds: float, connections: int) -> dict:
    """``wrk`` plus the CPU the server used per request: a ratio of those is not skewed by
    other work on a shared machine the way a ratio of requests per second is."""
    before = cpu_s(pid)
    run = wrk(url, script, seconds, connections)
    run["cpu_us_per_request"] = (cpu_s(pid) - before) / (run["rps"] * seconds) * 1e6
    return run


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Samples a process's VmRSS every 0.2 s in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(OSError):
                self.samples.append(rss_mb(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def single_lua(work: Path) -> Path:
    """The wrk script of the single-event runs: one event per request, a fresh id each."""
    event = to_json_dict(sample_events(1)[0])
    event["event_id"] = "EVENT_ID"
    script = work / "single.lua"
    script.write_text(SINGLE_LUA % (orjson.dumps(event).decode(), os.getpid()))
    return script


def single_event(work: Path, seconds: float, rounds: int) -> dict[str, object]:
    script = single_lua(work)
    bare_port = free_port()
    bare_url = f"http://127.0.0.1:{bare_port}"
    bare_script = work / "bare.py"
    bare_script.write_text(BARE_APP)
    fs = [{"name": "archive", "type": "filesystem", "config": {"root": str(work / "fs-single")}}]
    args, sc_url, log = sidecar(work, fs, "single")
    bare_args = [sys.executable, str(bare_script), f"127.0.0.1:{bare_port}"]
    floor_port = free_port()
    floor_url = f"http://127.0.0.1:{floor_port}"
    (work / "floor.py").write_text(FLOOR_APP)
    floor_args = [sys.executable, str(work / "floor.py"), f"127.0.0.1:{floor_port}"]
    floor_args.append(str(work / "floor-spool"))
    sc_runs, bare_runs, floor_runs = [], [], []
    with (
        process(bare_args, bare_url, work / "bare.log", probe="/") as bare_pid,
        process(floor_args, floor_url, work / "floor.log", probe="/") as floor_pid,
        process(args, sc_url, log) as sc_pid,
    ):
        servers = [(bare_pid, bare_url, bare_runs), (floor_pid, floor_url, floor_runs)]
        servers.append((sc_pid, sc_url, sc_runs))
        for _pid, url, _runs in servers:  # warm-up
            wrk(url + "/v1/ingest/events", script, 2, CONNECTIONS)
        for _ in range(rounds):  # interleaved, so drift on a shared machine hits each alike
            for pid, url, runs in servers:
                runs.append(wrk_cpu(pid, url + "/v1/ingest/events", script, seconds, CONNECTIONS))
        # One connection: the latency of a request that does not queue behind others.
        bare_one = wrk(bare_url + "/v1/ingest/events", script, seconds, 1)
        sc_one = wrk(sc_url + "/v1/ingest/events", script, seconds, 1)
        health = httpx.get(sc_url + "/v1/healthz").json()
        rss = rss_mb(sc_pid)
        metrics = httpx.get(sc_url + "/metrics").text
    appends = _metric(metrics, "wafermon_sidecar_spool_appends_total")
    fsyncs = _metric(metrics, "wafermon_sidecar_spool_fsyncs_total")
    sc_rps = statistics.median(r["rps"] for r in sc_runs)
    bare_rps = statistics.median(r["rps"] for r in bare_runs)
    sc_cpu = statistics.median(r["cpu_us_per_request"] for r in sc_runs)
    bare_cpu = statistics.median(r["cpu_us_per_request"] for r in bare_runs)
    floor_rps = statistics.median(r["rps"] for r in floor_runs)
    floor_cpu = statistics.median(r["cpu_us_per_request"] for r in floor_runs)
    return {
        "what": f"single-event POST /v1/ingest/events, wrk {CONNECTIONS} connections, sidecar "
        "with a filesystem backend (spool fsync + delivery in the same process), log level info",
        "requests_per_s": round(sc_rps),
        "p50_ms": statistics.median(r["p50_ms"] for r in sc_runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in sc_runs),
        "baseline_bare_starlette_hypercorn_requests_per_s": round(bare_rps),
        "baseline_p50_ms": statistics.median(r["p50_ms"] for r in bare_runs),
        "baseline_p99_ms": statistics.median(r["p99_ms"] for r in bare_runs),
        "ratio_to_bare": round(sc_rps / bare_rps, 3),
        "cpu_us_per_request": round(sc_cpu),
        "baseline_cpu_us_per_request": round(bare_cpu),
        "cpu_ratio_to_bare": round(bare_cpu / sc_cpu, 3),
        "target_ratio": 0.7,
        "target_p99_ms": 10,
        "floor": {
            "what": "a plain ASGI callable on the same Hypercorn setup appending each body "
            "to a spool through group commit before its 202, nothing else: the sidecar's "
            "ratio cannot exceed this one",
            "requests_per_s": round(floor_rps),
            "p99_ms": statistics.median(r["p99_ms"] for r in floor_runs),
            "cpu_us_per_request": round(floor_cpu),
            "ratio_to_bare": round(floor_rps / bare_rps, 3),
            "cpu_ratio_to_bare": round(bare_cpu / floor_cpu, 3),
        },
        "note": "wrk is closed-loop: at 16 connections the server is saturated and p50 is "
        "about 16 / requests_per_s (queueing); the one-connection figures are service times",
        "one_connection": {
            "requests_per_s": round(sc_one["rps"]),
            "p50_ms": sc_one["p50_ms"],
            "p99_ms": sc_one["p99_ms"],
            "baseline_requests_per_s": round(bare_one["rps"]),
            "baseline_p50_ms": bare_one["p50_ms"],
            "baseline_p99_ms": bare_one["p99_ms"],
        },
        "appends_per_fsync": round(appends / fsyncs, 2) if fsyncs else None,
        "non_2xx": sum(r["non_2xx"] for r in sc_runs),
        "socket_errors": sorted({r["socket_errors"] for r in sc_runs if r["socket_errors"]}),
        "delivery_lag_records_at_end": health["backends"]["archive"]["lag"],
        "sidecar_rss_mb_at_end": round(rss, 1),
        "rounds": rounds,
        "seconds_per_round": seconds,
    }


def batched(work: Path, seconds: float, rounds: int) -> dict[str, object]:
    body = work / "batch.ndjson"
    body.write_bytes(encode_ndjson(sample_events(BATCH)))
    script = work / "batch.lua"
    script.write_text(BATCH_LUA % body)
    out: dict[str, object] = {
        "what": f"NDJSON batches of {BATCH} (about {body.stat().st_size // 1024} KiB), "
        "wrk 8 connections, every request fsynced before its 202",
        "target_events_per_s": 150_000,
    }
    dead = [
        {
            "name": "unreachable",
            "type": "gateway",
            "config": {"url": f"http://127.0.0.1:{free_port()}"},
        }
    ]
    args, url, log = sidecar(work, dead, "accept-only")
    bare_port = free_port()
    bare_url = f"http://127.0.0.1:{bare_port}"
    (work / "durable.py").write_text(DURABLE_APP)
    bare_args = [sys.executable, str(work / "durable.py"), f"127.0.0.1:{bare_port}"]
    bare_args.append(str(work / "durable.log"))
    runs, bare_runs = [], []
    with (
        process(args, url, log) as sc_pid,
        process(bare_args, bare_url, work / "durable-app.log", probe="/") as bare_pid,
    ):
        wrk(url + "/v1/ingest/events", script, 2, 8)
        wrk(bare_url + "/v1/ingest/events", script, 2, 8)
        for _ in range(rounds):  # interleaved: drift on a shared machine hits both
            runs.append(wrk_cpu(sc_pid, url + "/v1/ingest/events", script, seconds, 8))
            bare_runs.append(wrk_cpu(bare_pid, bare_url + "/v1/ingest/events", script, seconds, 8))
    accept_only = statistics.median(r["rps"] for r in runs) * BATCH
    bare = statistics.median(r["rps"] for r in bare_runs) * BATCH
    out["accept_only_events_per_s"] = round(accept_only)
    out["accept_only_cpu_us_per_event"] = round(
        statistics.median(r["cpu_us_per_request"] for r in runs) / BATCH, 2
    )
    out["baseline_cpu_us_per_event"] = round(
        statistics.median(r["cpu_us_per_request"] for r in bare_runs) / BATCH, 2
    )
    out["accept_only_p99_ms"] = statistics.median(r["p99_ms"] for r in runs)
    out["baseline_bare_write_fsync_events_per_s"] = round(bare)
    out["accept_only_ratio_to_bare_write_fsync"] = round(accept_only / bare, 3)

    fs = [{"name": "archive", "type": "filesystem", "config": {"root": str(work / "fs-batch")}}]
    args, url, log = sidecar(work, fs, "delivering")
    with process(args, url, log) as pid:
        rss_idle = rss_mb(pid)
        with RssSampler(pid) as sampler:
            loaded_from = time.monotonic()
            warm = wrk(url + "/v1/ingest/events", script, 2, 8)
            runs = [wrk(url + "/v1/ingest/events", script, seconds, 8) for _ in range(rounds)]
            lag_at_stop = httpx.get(url + "/v1/healthz").json()["backends"]["archive"]["lag"]
            began = time.monotonic()
            while httpx.get(url + "/v1/healthz").json()["backends"]["archive"]["lag"] > 0:
                time.sleep(0.1)
            catch_up = time.monotonic() - began
            delivered = (warm["rps"] * 2 + sum(r["rps"] for r in runs) * seconds) * BATCH
            sustained = delivered / (time.monotonic() - loaded_from)
    accepted = statistics.median(r["rps"] for r in runs) * BATCH
    out["with_delivery_events_per_s"] = round(accepted)
    # Accepted and also delivered: from the first request until the backend had everything.
    out["with_delivery_sustained_events_per_s"] = round(sustained)
    out["with_delivery_p99_ms"] = statistics.median(r["p99_ms"] for r in runs)
    out["with_delivery_lag_records_when_load_stopped"] = lag_at_stop
    out["with_delivery_catch_up_s"] = round(catch_up, 1)
    out["non_2xx"] = sum(r["non_2xx"] for r in runs)
    out["rss"] = {
        "what": "sidecar VmRSS during the batched run with delivery",
        "idle_mb": round(rss_idle, 1),
        "max_mb": round(max(sampler.samples), 1),
        "median_mb": round(statistics.median(sampler.samples), 1),
        "target_max_mb": 150,
    }
    return out


def subjob_bodies(events: int) -> list[bytes]:
    """Every event a new subjob: each one upserts a job row of its own (the worst case)."""
    return [encode_ndjson(events_now(BATCH)) for _ in range(events // BATCH)]


def job_bodies(events: int) -> list[bytes]:
    """Jobs of 10 events (started, progress, finished): gateway_ingest_postgres's workload."""
    jobs = recent_job_events(events // 10, 10)
    return [encode_ndjson(jobs[i : i + BATCH]) for i in range(0, len(jobs), BATCH)]


#: The end-to-end workloads: result name -> (bodies of that many events, what they are).
WORKLOADS = {
    "sidecar_end_to_end_postgres": subjob_bodies,
    "sidecar_end_to_end_postgres_jobs": job_bodies,
}


async def end_to_end(
    work: Path, events: int, make_bodies: Callable[[int], list[bytes]] = subjob_bodies
) -> dict[str, object]:
    bodies = make_bodies(events)
    total = len(bodies) * BATCH

    async def count(url: str) -> tuple[int, int]:
        conn = await asyncpg.connect(url)
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events"
            )
        finally:
            await conn.close()
        return row["n"], row["d"]

    db = await fresh_database("wm_bench_sc")
    gw_port = free_port()
    gw_url = f"http://127.0.0.1:{gw_port}"
    gw_config = work / "gateway.yaml"
    gw_config.write_text(
        f"site_id: fab1\ngateway: {{listen: '127.0.0.1:{gw_port}'}}\n"
        f"backends: [{{name: managed, type: sql, config: {{url: '{db}'}}}}]\n"
    )
    gw_args = [_wafermon(), "gateway", "--config", str(gw_config), "--log-level", "warning"]
    backends = [{"name": "managed-gw", "type": "gateway", "config": {"url": gw_url}}]
    args, sc_url, log = sidecar(work, backends, "e2e")
    with process(gw_args, gw_url, work / "gateway-e2e.log"), process(args, sc_url, log):
        began = time.perf_counter()
        posted = await _post(sc_url, bodies)
        while (await count(db))[1] < total:
            await asyncio.sleep(0.25)
        seconds = time.perf_counter() - began
        rows, distinct = await count(db)
    # Baseline: the same volume (fresh events) POSTed straight to a gateway on a fresh database.
    direct_db = await fresh_database("wm_bench_sc_direct")
    gw_config.write_text(gw_config.read_text().replace(db, direct_db))
    fresh = make_bodies(events)
    with process(gw_args, gw_url, work / "gateway-direct.log"):
        direct_s = await post_all(gw_url, fresh)
    direct = total / direct_s
    return {
        "what": f"sidecar -> wafermon gateway -> PostgreSQL, {total} events in NDJSON batches "
        f"of {BATCH} from 4 clients; timed from the first POST to the last event in PostgreSQL. "
        f"Events: {(make_bodies.__doc__ or '').strip()}",
        "events_per_s": round(total / seconds),
        "sidecar_accept_events_per_s": round(total / posted),
        "baseline_direct_to_gateway_events_per_s": round(direct),
        "ratio_to_direct": round(total / seconds / direct, 3),
        "events": total,
        "rows_in_postgresql": rows,
        "distinct_in_postgresql": distinct,
        "nothing_lost_or_doubled": rows == distinct == total,
    }


async def _post(url: str, bodies: list[bytes], concurrency: int = 4) -> float:
    queue = list(reversed(bodies))
    async with httpx.AsyncClient(
        base_url=url, timeout=120, headers={"Content-Type": "application/x-ndjson"}
    ) as client:

        async def worker() -> None:
            while queue:
                response = await client.post("/v1/ingest/events", content=queue.pop())
                assert response.status_code == 202, response.text[:300]

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - began


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([\d.e+]+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


def run_end_to_end(quick: bool, only: set[str]) -> dict[str, object]:
    """Only the end-to-end runs named in ``only`` (``bench/run.py --only
    sidecar_end_to_end_postgres,sidecar_end_to_end_postgres_jobs``)."""
    pg_url()
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-sc-") as tmp:
        return {
            name: asyncio.run(end_to_end(Path(tmp), 20_000 if quick else 100_000, make))
            for name, make in WORKLOADS.items()
            if name in only
        }


def run(quick: bool) -> dict[str, object]:
    pg_url()  # fail early, before minutes of other work, if PostgreSQL is not set up
    seconds, rounds = (4.0, 1) if quick else (10.0, 3)
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-sc-") as tmp:
        work = Path(tmp)
        out: dict[str, object] = {}
        load_before = os.getloadavg()[0]
        print("bench sidecar_single_event ...", file=sys.stderr, flush=True)
        out["sidecar_single_event"] = single_event(work, seconds, rounds)
        print("bench sidecar_batched_ingest ...", file=sys.stderr, flush=True)
        out["sidecar_batched_ingest"] = batched(work, seconds, rounds)
        for name, make in WORKLOADS.items():
            print(f"bench {name} ...", file=sys.stderr, flush=True)
            out[name] = asyncio.run(end_to_end(work, 20_000 if quick else 100_000, make))
        out["sidecar_machine_load"] = {
            "what": "1-minute load average around these runs: other work on the machine "
            "shares its cores and makes every figure above noisier and lower",
            "before": load_before,
            "after": os.getloadavg()[0],
            "cpus": os.cpu_count(),
        }
        return out
