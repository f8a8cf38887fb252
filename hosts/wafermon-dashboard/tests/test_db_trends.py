"""The Trends view: CloudWatch metrics written by the cloudwatch backend into moto_server,
read by a real gateway's GET /v1/trends (its cloudwatch source: GetMetricData) and charted by
the dashboard in headless Chromium.

AWS cannot be reached from here: moto_server (``scripts/services start moto``, its address in
WAFERMON_TEST_MOTO_ENDPOINT) stands in for CloudWatch, a real HTTP server the backend signs
requests to. moto's GetMetricData ignores the namespace once dimensions are given, so this
test's metrics carry a dimension of their own (``Run``). What is asserted is what our code
computes: the emitter's per-minute aggregation, the gateway's series, the view's summary.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from db_helpers import Processes, free_port, run_async, screenshot_dir, wafermon, write_yaml
from playwright.sync_api import expect

from wafermon import App, Entity, ErrorInfo, Event, Metrics

AWS_ENV = {  # no credential files, no instance-metadata probe (off-box traffic)
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


def moto_endpoint() -> str:
    endpoint = os.environ.get("WAFERMON_TEST_MOTO_ENDPOINT")
    if not endpoint:
        pytest.fail(
            "WAFERMON_TEST_MOTO_ENDPOINT is not set: start moto with "
            '`eval "$(scripts/services start moto)"` (scripts/test does this)'
        )
    return endpoint


def job_event(kind: str, app: str, when: datetime, duration_s: float | None = None) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        kind=kind,
        time=when,
        site_id="fab1",
        app=App(name=app),
        entity=Entity(type="job", id=f"job-{uuid.uuid4().hex[:8]}"),
        metrics=Metrics(duration_s=duration_s),
        error=ErrorInfo(type="ChamberFault", message="pressure drop") if kind == "failed" else None,
    )


#: (minutes ago, kind, app, duration): 4 failed jobs (3 etch, 1 litho) and 2 finished ones.
JOBS = [
    (50, "failed", "etch", 40.0),
    (50, "finished", "etch", 20.0),
    (35, "failed", "etch", 10.0),
    (35, "failed", "litho", 30.0),
    (20, "failed", "etch", 5.0),
    (20, "finished", "litho", 60.0),
]


async def put_metrics(config: dict, events: list[Event]) -> None:
    from wafermon_backend_cloudwatch.emitter import CloudWatchEmitter, CloudWatchSettings

    from wafermon import Secret

    settings = CloudWatchSettings(
        **{k: v for k, v in config.items() if "key" not in k},
        access_key_id=Secret("testing"),
        secret_access_key=Secret("testing"),
        logs=False,
    )
    emitter = CloudWatchEmitter("aws", settings)
    await emitter.start()
    try:
        await emitter.emit(events)
    finally:
        await emitter.close()


@pytest.fixture(scope="module")
def cw_stack(tmp_path_factory) -> Iterator[dict]:
    os.environ.update(AWS_ENV)
    workdir: Path = tmp_path_factory.mktemp("cw-stack")
    tag = uuid.uuid4().hex[:10]
    aws = {
        "endpoint_url": moto_endpoint(),
        "region": "us-east-1",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "namespace": f"WafermonDash{tag}",
        "dimensions": {"Run": tag},
    }
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    events = [job_event(k, a, minute - timedelta(minutes=m, seconds=-5), d) for m, k, a, d in JOBS]
    run_async(lambda: put_metrics(aws, events))
    ports = {"gw": free_port(), "dash": free_port(), "central": free_port(), "cdash": free_port()}
    site = write_yaml(
        workdir / "site.yaml",
        {
            "site_id": "fab1",
            "gateway": {"listen": f"127.0.0.1:{ports['gw']}", "sources": ["aws"]},
            "backends": [{"name": "managed", "type": "sql",
                          "config": {"url": f"sqlite+aiosqlite:///{workdir / 'fab1.db'}"}}],
            "sources": [{"name": "aws", "type": "cloudwatch", "config": aws}],
        },
    )  # fmt: skip
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    central = write_yaml(
        workdir / "central.yaml",
        {"site_id": "central", "central": {"listen": f"127.0.0.1:{ports['central']}",
                                           "sites": [{"name": "fab1", "url": url["gw"]}]}},
    )  # fmt: skip
    procs = Processes(workdir)
    try:
        procs.start("gateway", wafermon("gateway", "-c", str(site)), url["gw"],
                    url["gw"] + "/v1/healthz")  # fmt: skip
        procs.start("central", wafermon("central", "-c", str(central)), url["central"],
                    url["central"] + "/v1/healthz")  # fmt: skip
        for name, mode, target in (("dash", "--gateway", "gw"), ("cdash", "--central", "central")):
            procs.start(name, wafermon("dashboard", mode, url[target], "--listen",
                        f"127.0.0.1:{ports[name]}"), url[name], url[name] + "/healthz")  # fmt: skip
        procs.wait_ready()
        yield {"gateway": url["gw"], "dashboard": url["dash"], "central": url["central"],
               "central_dashboard": url["cdash"], "minute": minute}  # fmt: skip
    finally:
        procs.stop_all()


def test_the_gateway_serves_cloudwatch_trends(cw_stack):
    """GET /v1/trends over HTTP: per-minute failures and durations as the emitter wrote them."""
    gateway = cw_stack["gateway"]
    offered = httpx.get(f"{gateway}/v1/trends/sources").json()["sources"]
    assert list(offered) == ["aws"]
    assert offered["aws"]["metrics"]["JobsFailed"] == "Count"
    assert offered["aws"]["metrics"]["JobDuration"] == "Seconds"
    since = cw_stack["minute"] - timedelta(hours=1)
    params = {"source": "aws", "metric": "JobsFailed", "since": since.isoformat(), "period": 60}
    body = httpx.get(f"{gateway}/v1/trends", params=params).json()
    [total] = body["series"]
    assert total["name"] == "fab1"
    ago = [round((cw_stack["minute"] - datetime.fromisoformat(p["time"])) / timedelta(minutes=1))
           for p in total["points"]]  # fmt: skip
    assert list(zip(ago, [p["value"] for p in total["points"]], strict=True)) == [
        (50, 1.0), (35, 2.0), (20, 1.0)
    ]  # fmt: skip
    by_app = httpx.get(f"{gateway}/v1/trends", params={**params, "by": "app"}).json()
    assert {s["name"]: sum(p["value"] for p in s["points"]) for s in by_app["series"]} == {
        "etch": 3.0, "litho": 1.0
    }  # fmt: skip
    longest = {**params, "metric": "JobDuration", "stat": "max", "period": 3600}
    body = httpx.get(f"{gateway}/v1/trends", params=longest).json()
    assert max(p["value"] for p in body["series"][0]["points"]) == 60.0
    bad = httpx.get(f"{gateway}/v1/trends", params={**params, "metric": "Nope"})
    assert bad.status_code == 400
    assert bad.json()["problems"][0]["path"] == "metric"


def test_the_trends_view_charts_failures_per_app(page, cw_stack):
    page.goto(cw_stack["dashboard"] + "/trends")
    expect(page.locator("#page h2")).to_have_text("Trends")
    summary = page.locator("#trend-summary")
    # the default: JobsFailed, sum over 24 hours in 5-minute points, the site's total
    expect(summary).to_have_text(
        "JobsFailed from aws, sum per 5 min: 3 points in 1 series (fab1), 4 in all"
    )
    expect(page.locator("#trend-graph .scatterlayer .trace")).to_have_count(1)
    page.locator("#trend-by").click()
    page.locator(".dash-dropdown-option", has_text=re.compile("^per application$")).first.click()
    expect(summary).to_have_text(
        "JobsFailed from aws, sum per 5 min: 4 points in 2 series (etch, litho), 4 in all"
    )
    expect(page.locator("#trend-graph .scatterlayer .trace")).to_have_count(2)
    expect(page.locator("#trend-graph .legend")).to_contain_text("litho")
    if (folder := screenshot_dir()) is not None:  # WAFERMON_SCREENSHOTS=docs/images
        folder.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(600)
        page.screenshot(path=str(folder / "dashboard-trends.png"), full_page=True)
    page.locator("#trend-metric").click()
    page.locator(".dash-dropdown-option", has_text=re.compile("^JobDuration$")).first.click()
    page.locator("#trend-stat").click()
    page.locator(".dash-dropdown-option", has_text=re.compile("^maximum$")).first.click()
    expect(summary).to_contain_text("JobDuration from aws, max per 5 min: 5 points")
    expect(page.locator("#trend-graph .gtitle")).to_contain_text("JobDuration (Seconds)")
    assert page.errors == [], page.errors


def test_central_passes_trends_through_and_its_dashboard_charts_them(page, cw_stack):
    since = (cw_stack["minute"] - timedelta(hours=1)).isoformat()
    params = {"site": "fab1", "source": "aws", "metric": "JobsFailed", "since": since,
              "period": 60}  # fmt: skip
    body = httpx.get(f"{cw_stack['central']}/v1/trends", params=params).json()
    assert [p["value"] for p in body["series"][0]["points"]] == [1.0, 2.0, 1.0]
    page.goto(cw_stack["central_dashboard"] + "/trends")
    expect(page.locator("#trend-source")).to_contain_text("fab1/aws")
    expect(page.locator("#trend-summary")).to_have_text(
        "JobsFailed from aws, sum per 5 min: 3 points in 1 series (fab1), 4 in all"
    )
    expect(page.locator("#trend-graph .scatterlayer .trace")).to_have_count(1)
    assert page.errors == [], page.errors


def test_without_trend_sources_the_view_says_so(page, stack):
    """The seeded stack's gateways have a filesystem source at most."""
    page.goto(stack.dashboard + "/trends")
    expect(page.locator("#page .notice")).to_contain_text("No source of this gateway keeps")
    expect(page.locator("#nav-trends")).to_be_visible()
    page.goto(stack.central_dashboard + "/trends")
    expect(page.locator("#page .notice")).to_contain_text("No site's gateway keeps")
    expect(page.locator("#nav-trends")).to_be_visible()
    assert page.errors == [], page.errors
