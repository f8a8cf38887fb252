"""Central host and dashboard benchmarks (issue 6). ``run(quick)`` returns the figures.

- Dashboard job-list first load over a SQLite store holding 100,000 jobs (loaded through the sql
  store's own ingest, as gateway_bench.jobs_latency does): GET of the page and the Dash layout
  plus the callback that renders the job list (which asks the gateway for its first page), as a
  ratio to a bare GET /v1/jobs of the same page. With Chromium and Playwright installed, also
  the time a real browser takes from navigation to the rendered rows.
- Central fan-out latency across 5 gateways, one of them dead (connection refused), cache off:
  p50 / p95 of GET /v1/jobs (merged, every site) as a ratio to the same request sent to a single
  gateway directly.
Everything is real processes on 127.0.0.1; each figure is compared with a baseline measured
in the same run. Needs wafermon-hosts, wafermon-dashboard and the sql backend installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from hosts import free_port
from wafermon import App, Entity, ErrorInfo, Event, Metrics

PAGE = 50  # the dashboard's default page size


def job_events(jobs: int, start: datetime, site_id: str = "fab1") -> Iterator[Event]:
    """``jobs`` jobs of three events each (started, progress, finished or failed)."""
    apps = [App(name=f"app-{n}", version="1.0") for n in range(5)]
    for j in range(jobs):
        entity = Entity(type="job", id=f"job-{j:07d}", business_key=f"LOT-{j:07d}")
        app, t0 = apps[j % 5], start + timedelta(seconds=j * 0.5)
        failed = j % 50 == 0
        common = {"site_id": site_id, "app": app, "entity": entity}
        yield Event(event_id=uuid.uuid4(), kind="started", time=t0,
                    metadata={"tool": f"etch-{j % 7}"}, **common)  # fmt: skip
        yield Event(event_id=uuid.uuid4(), kind="progress", time=t0 + timedelta(seconds=1),
                    metrics=Metrics(progress=0.5), **common)  # fmt: skip
        yield Event(
            event_id=uuid.uuid4(),
            kind="failed" if failed else "finished",
            time=t0 + timedelta(seconds=2),
            metrics=Metrics(duration_s=2.0, cpu_user_s=1.0, mem_max_mb=100.0),
            error=ErrorInfo(type="E", message="chamber") if failed else None,
            **common,
        )


async def load_store(url: str, jobs: int, site_id: str = "fab1") -> float:
    """Ingest through the sql store directly; returns events per second."""
    from wafermon_backend_sql import SqlStore
    from wafermon_backend_sql.store import Settings

    store = SqlStore("managed", Settings(url=url))
    await store.start()
    began, chunk, count = time.perf_counter(), [], 0
    for event in job_events(jobs, datetime.now(UTC) - timedelta(hours=20), site_id):
        chunk.append(event)
        if len(chunk) == 5000:
            await store.ingest(chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        await store.ingest(chunk)
        count += len(chunk)
    await store.close()
    return count / (time.perf_counter() - began)


class Procs:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *args: str, health: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "wafermon.cli", *args], stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=2).status_code < 500:
                    return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start; see {log.name}")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def gateway(procs: Procs, workdir: Path, name: str, db_url: str) -> str:
    port = free_port()
    config = workdir / f"{name}.yaml"
    config.write_text(
        f"site_id: {name}\n"
        f"gateway: {{listen: '127.0.0.1:{port}'}}\n"
        f"backends: [{{name: managed, type: sql, config: {{url: '{db_url}'}}}}]\n"
    )
    url = f"http://127.0.0.1:{port}"
    procs.start(name, "gateway", "-c", str(config), "--log-level", "warning",
                health=url + "/v1/healthz")  # fmt: skip
    return url


def timings(call: Callable[[], object], n: int, warm: int = 5) -> dict[str, float]:
    for _ in range(warm):
        call()
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2),
    }


def ratio(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k.replace("_ms", ""): round(a[k] / b[k], 2) for k in ("p50_ms", "p95_ms")}


# -- dashboard first load -------------------------------------------------------------------------


def route_callback(path: str) -> dict[str, object]:
    return {
        "output": "page.children",
        "outputs": {"id": "page", "property": "children"},
        "inputs": [{"id": "url", "property": "pathname", "value": path}],
        "state": [{"id": "url", "property": "search", "value": ""}],
        "changedPropIds": ["url.pathname"],
    }


def browser_first_load(url: str, rounds: int) -> dict[str, float] | None:
    """Navigation to rendered job rows in headless Chromium, or None without a browser."""
    if not Path("/usr/bin/chromium").exists():
        return None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    samples = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--disable-gpu",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"],
        )  # fmt: skip
        for n in range(rounds + 1):
            page = browser.new_page()
            began = time.perf_counter()
            page.goto(url + "/jobs")
            page.locator("#jobs-rows tbody tr").nth(PAGE - 1).wait_for()
            if n:  # the first round warms the browser's cache
                samples.append((time.perf_counter() - began) * 1000)
            page.close()
        browser.close()
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
        "rounds": rounds,
    }


def dashboard_first_load(workdir: Path, jobs: int, requests: int) -> dict[str, object]:
    db = f"sqlite+aiosqlite:///{workdir / 'dash.db'}"
    print(f"  loading {jobs} jobs ({jobs * 3} events) into SQLite ...", file=sys.stderr)
    rate = asyncio.run(load_store(db, jobs))
    procs = Procs(workdir)
    try:
        gw = gateway(procs, workdir, "fab1", db)
        port = free_port()
        dash = f"http://127.0.0.1:{port}"
        procs.start("dashboard", "dashboard", "--gateway", gw, "--listen", f"127.0.0.1:{port}",
                    "--log-level", "warning", health=dash + "/healthz")  # fmt: skip
        with httpx.Client(timeout=60) as client:
            body = route_callback("/jobs")

            def first_load() -> None:
                client.get(dash + "/jobs").raise_for_status()
                client.get(dash + "/_dash-layout").raise_for_status()
                rendered = client.post(dash + "/_dash-update-component", json=body)
                rendered.raise_for_status()
                assert rendered.text.count('"job-link"') == PAGE

            def api_page() -> None:
                page = client.get(gw + "/v1/jobs", params={"limit": PAGE, "sort": "-start_time"})
                page.raise_for_status()
                assert len(page.json()["items"]) == PAGE

            dashboard = timings(first_load, requests)
            baseline = timings(api_page, requests)
        browser = browser_first_load(dash, 10 if requests < 100 else 20)
    finally:
        procs.stop()
    return {
        "what": f"dashboard job list, first load (GET page + GET layout + the callback that "
        f"renders {PAGE} jobs), SQLite store with {jobs} jobs / {jobs * 3} events",
        "load_events_per_s_via_store": round(rate),
        "dashboard_first_load": dashboard,
        "baseline_get_v1_jobs_same_page": baseline,
        "ratio_to_get_v1_jobs": ratio(dashboard, baseline),
        "browser_navigation_to_rows": browser or "skipped: no /usr/bin/chromium or playwright",
        "requests": requests,
    }


# -- central fan-out ----------------------------------------------------------------------------


def central_fanout(workdir: Path, jobs_per_site: int, requests: int) -> dict[str, object]:
    procs = Procs(workdir)
    try:
        sites = {}
        for n in range(1, 5):
            db = f"sqlite+aiosqlite:///{workdir / f'site{n}.db'}"
            asyncio.run(load_store(db, jobs_per_site, f"fab{n}"))
            sites[f"fab{n}"] = gateway(procs, workdir, f"fab{n}", db)
        sites["fab5"] = f"http://127.0.0.1:{free_port()}"  # dead: nothing listens there
        port = free_port()
        central_url = f"http://127.0.0.1:{port}"
        entries = "\n".join(f"    - {{name: {n}, url: '{u}'}}" for n, u in sites.items())
        config = workdir / "central.yaml"
        config.write_text(
            "site_id: central\ncentral:\n"
            f"  listen: 127.0.0.1:{port}\n  site_timeout: 2s\n  cache_ttl: 0\n"
            f"  sites:\n{entries}\n"
        )
        procs.start("central", "central", "-c", str(config), "--log-level", "warning",
                    health=central_url + "/v1/healthz")  # fmt: skip
        params = {"limit": 100, "status": "finished"}
        with httpx.Client(timeout=30) as client:

            def via_central() -> None:
                body = client.get(central_url + "/v1/jobs", params=params).json()
                assert len(body["items"]) == 100
                assert body["sites"]["fab5"]["status"] == "failed"

            def single() -> None:
                body = client.get(sites["fab1"] + "/v1/jobs", params=params).json()
                assert len(body["items"]) == 100

            fanned = timings(via_central, requests)
            baseline = timings(single, requests)
            # A second page: every site is read from its own cursor.
            cursor = client.get(central_url + "/v1/jobs", params=params).json()["next_cursor"]

            def page_two() -> None:
                body = client.get(central_url + "/v1/jobs", params={**params, "cursor": cursor})
                assert len(body.json()["items"]) == 100

            second = timings(page_two, requests)
    finally:
        procs.stop()
    return {
        "what": f"GET /v1/jobs?limit=100 through `wafermon central` over 5 gateways (4 with "
        f"{jobs_per_site} jobs each on SQLite, 1 dead: connection refused), cache off",
        "central_5_sites_one_dead": fanned,
        "central_page_2": second,
        "baseline_single_gateway_direct": baseline,
        "ratio_to_single_gateway": ratio(fanned, baseline),
        "ratio_page_2_to_single_gateway": ratio(second, baseline),
        "requests": requests,
    }


def run(quick: bool) -> dict[str, object]:
    jobs = 2000 if quick else 100_000
    requests = 30 if quick else 200
    work = Path(tempfile.mkdtemp(prefix="wafermon-bench-central-"))
    try:
        out: dict[str, object] = {}
        print("bench dashboard_first_load ...", file=sys.stderr, flush=True)
        out["dashboard_first_load"] = dashboard_first_load(work, jobs, requests)
        print("bench central_fanout ...", file=sys.stderr, flush=True)
        out["central_fanout"] = central_fanout(work, 500 if quick else 5000, requests)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
