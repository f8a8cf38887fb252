"""The Alerts and Monitors views and the live view's alert badges, in headless Chromium,
against real gateways whose alert engines raised real alerts from real events.

Two gateways run as ``wafermon gateway`` processes with alerting on (a 1 s cycle): ``open``
has no tokens (a loopback site: its dashboard may silence), ``secured`` has read, ingest and
admin tokens behind a dashboard with sign-in. Events go in through ``/v1/ingest/managed``; the
engines fire (a monitor failing, a failure-rate rule) and resolve (a monitor that recovers) on
their own. Their notifier points at a closed port, so the views show failed notifications.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from db_helpers import Processes, free_port, wafermon, write_yaml
from playwright.sync_api import expect
from test_db_browser import choose, no_errors, shot

from wafermon import App, Entity, ErrorInfo, Event, Metrics, encode_array

READ, INGEST, ADMIN = "read-t0ken-alerts", "ingest-t0ken-alerts", "admin-t0ken-alerts"


def run(app: str, job: str, start: datetime, *, ok: bool, key: str | None = None) -> list[Event]:
    entity = Entity(type="job", id=job, business_key=key)
    end = start + timedelta(minutes=3)
    return [
        Event(event_id=uuid.uuid4(), kind="started", time=start, site_id="fab1",
              app=App(name=app), entity=entity),
        Event(event_id=uuid.uuid4(), kind="finished" if ok else "failed", time=end,
              site_id="fab1", app=App(name=app), entity=entity, metrics=Metrics(duration_s=180),
              error=None if ok else ErrorInfo(type="ChamberFault", message="pressure drop")),
    ]  # fmt: skip


def post(gateway: str, events: list[Event], token: str | None = None) -> None:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = httpx.post(gateway + "/v1/ingest/managed", content=encode_array(events), headers=headers)
    assert r.status_code == 200, r.text


def wait_for(gateway: str, predicate, token: str | None = None, timeout: float = 30.0) -> list:
    """Poll ``/v1/alerts?status=all`` until ``predicate(alerts)`` holds (the engine's cycle)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout
    while True:
        alerts = httpx.get(gateway + "/v1/alerts", params={"status": "all"}, headers=headers)
        found = alerts.json()["alerts"]
        if predicate(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"alerts never matched: {found}")
        time.sleep(0.3)


def site_config(workdir, name: str, port: int, tokens: dict | None) -> str:
    gateway: dict = {
        "listen": f"127.0.0.1:{port}",
        "alerting": {
            "enabled": True,
            "interval": "1s",
            "notifiers": ["hook"],
            "retry": {"attempts": 2, "initial": "50ms", "max": "100ms"},
            "monitors": [
                {"name": "etch-lots", "app": "etch", "schedule": {"every": "1h"}},
                {"name": "litho-lots", "app": "litho", "schedule": {"every": "1h"}},
                {
                    "name": "nightly-etl",
                    "app": "etl",
                    "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
                },
            ],
            "rules": [
                {
                    "name": "etch-failures",
                    "type": "failure_rate",
                    "app": "etch",
                    "failures": 1,
                    "of_last": 5,
                    "severity": "warning",
                },
            ],
        },
    }
    if tokens:
        gateway["tokens"] = tokens
    config = {
        "site_id": "fab1",
        "backends": [{"name": "managed", "type": "sql",
                      "config": {"url": f"sqlite+aiosqlite:///{workdir / name}.db"}}],
        "notifiers": [{"name": "hook", "type": "webhook",
                       "config": {"url": f"http://127.0.0.1:{free_port()}/closed"}}],
        "gateway": gateway,
    }  # fmt: skip
    return str(write_yaml(workdir / f"{name}.yaml", config))


@pytest.fixture(scope="module")
def alerting(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("alerting")
    ports = {n: free_port() for n in ("gw", "sgw", "dash", "sdash", "central", "cdash")}
    base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    open_site = site_config(workdir, "open", ports["gw"], None)
    tokens = {"read": [READ, ADMIN], "ingest": INGEST, "admin": ADMIN}
    secured_site = site_config(workdir, "secured", ports["sgw"], tokens)
    central = write_yaml(
        workdir / "central.yaml",
        {
            "site_id": "central",
            "central": {
                "listen": f"127.0.0.1:{ports['central']}",
                "site_timeout": "1s",
                "sites": [
                    {"name": "fab1", "url": base["gw"]},
                    {"name": "fab3", "url": f"http://127.0.0.1:{free_port()}"},
                ],
            },
        },
    )
    procs = Processes(workdir)
    try:
        procs.start(
            "central",
            wafermon("central", "-c", str(central)),
            base["central"],
            base["central"] + "/v1/healthz",
        )
        procs.start(
            "central-dashboard",
            wafermon("dashboard", "--central", base["central"], "--listen",
                     f"127.0.0.1:{ports['cdash']}", "--refresh", "1"),
            base["cdash"],
            base["cdash"] + "/healthz",
        )  # fmt: skip
        procs.start(
            "gateway", wafermon("gateway", "-c", open_site), base["gw"], base["gw"] + "/v1/healthz"
        )
        procs.start(
            "secured-gateway",
            wafermon("gateway", "-c", secured_site),
            base["sgw"],
            base["sgw"] + "/v1/healthz",
        )
        procs.start(
            "dashboard",
            wafermon(
                "dashboard",
                "--gateway",
                base["gw"],
                "--listen",
                f"127.0.0.1:{ports['dash']}",
                "--refresh",
                "1",
            ),
            base["dash"],
            base["dash"] + "/healthz",
        )
        procs.start("secured-dashboard", wafermon("dashboard", "--gateway", base["sgw"],
                    "--token", READ, "--listen", f"127.0.0.1:{ports['sdash']}", "--refresh", "1"),
                    base["sdash"], base["sdash"] + "/healthz")  # fmt: skip
        procs.wait_ready()
        now = datetime.now(UTC)
        etch = [e for i in range(5) for e in run("etch", f"etch-{i}", now - timedelta(minutes=60 - 10 * i),
                                                  ok=i != 4, key=f"LOT-{i}")]  # fmt: skip
        etl = run("etl", "etl-1", now - timedelta(minutes=40), ok=True)
        litho_failed = run("litho", "litho-1", now - timedelta(minutes=30), ok=False, key="L-1")
        post(base["gw"], etch + etl + litho_failed)
        wait_for(base["gw"], lambda a: len([x for x in a if x["status"] == "firing"]) == 3)
        post(base["gw"], run("litho", "litho-2", now - timedelta(minutes=10), ok=True, key="L-2"))
        wait_for(base["gw"], lambda a: any(x["status"] == "resolved" for x in a))
        post(base["sgw"], etch, token=INGEST)
        wait_for(base["sgw"], lambda a: len(a) == 2, token=READ)
        yield base
    finally:
        procs.stop_all()


def firing(gateway: str) -> list[dict]:
    return httpx.get(gateway + "/v1/alerts", params={"status": "firing"}).json()["alerts"]


def test_alerts_view_lists_what_fires_first_then_the_history(page, alerting):
    page.goto(alerting["dash"] + "/alerts")
    now_firing = firing(alerting["gw"])
    assert {a["rule"] for a in now_firing} == {"monitor_failing", "etch-failures"}
    rows = page.locator("#alerts-firing-table tbody tr")
    expect(rows).to_have_count(len(now_firing))
    expect(page.locator("#alerts-firing-count")).to_have_text(f"({len(now_firing)})")
    expect(page.locator("#alerts-firing-table")).to_contain_text("monitor etch-lots")
    expect(page.locator("#alerts-firing-table .badge-sev-critical")).to_have_count(1)
    expect(page.locator("#alerts-firing-table .badge-sev-warning")).to_have_count(1)
    # the notifier's port is closed: every attempt failed, and the page says why
    expect(rows.first).to_contain_text("0 sent · 2 failed (hook: RetryableError")
    history = page.locator("#alerts-history-table tbody tr")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("monitor litho-lots")
    expect(history.first).to_contain_text("litho")
    expect(page.locator("#alerts-silences")).to_contain_text("No active silence")

    choose(page, "alerts-severity", "warning")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("etch: 1 of the last 5 runs failed")
    choose(page, "alerts-status", "resolved only")
    expect(page.locator("#alerts-firing")).to_contain_text("Hidden")
    expect(history).to_have_count(0)  # the resolved one is critical
    no_errors(page)


def test_an_admin_silences_a_firing_alert_with_author_reason_and_expiry(page, alerting):
    page.goto(alerting["dash"] + "/alerts")
    row = page.locator("#alerts-firing-table tbody tr", has_text="monitor etch-lots")
    expect(row).to_have_count(1)
    row.locator("button", has_text="Silence").click()
    panel = page.locator("#silence-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("#silence-matchers")).to_contain_text("rule = monitor_failing")
    expect(panel.locator("#silence-matchers")).to_contain_text("monitor = etch-lots")
    shot(page, "alerts-silence")

    page.locator("#silence-submit").click()  # no author, no reason: refused in the page
    expect(page.locator("#silence-result")).to_contain_text("A silence needs author, reason")

    page.locator("#silence-author").fill("Ada (shift B)")
    page.locator("#silence-reason").fill("chamber 3 in maintenance")
    choose(page, "silence-for", "4 hours")
    before = datetime.now(UTC)
    page.locator("#silence-submit").click()
    expect(page.locator("#silence-done")).to_contain_text("Silenced until")
    expect(panel).to_be_hidden()

    [silence] = httpx.get(alerting["gw"] + "/v1/silences").json()["silences"]
    assert silence["author"] == "Ada (shift B)"
    assert silence["reason"] == "chamber 3 in maintenance"
    assert silence["matchers"] == {"rule": "monitor_failing", "site_id": "fab1", "app": "etch",
                                   "monitor": "etch-lots"}  # fmt: skip
    ends = datetime.fromisoformat(silence["ends_at"].replace("Z", "+00:00"))
    assert timedelta(hours=3, minutes=59) < ends - before < timedelta(hours=4, minutes=1)
    # the engine applies it on its next cycle; the page shows it without a reload
    expect(row.locator(".badge-silenced")).to_have_text("silenced", timeout=15_000)
    expect(row.locator("button", has_text="Silence")).to_have_count(0)
    expect(page.locator("#alerts-silences-table")).to_contain_text("chamber 3 in maintenance")
    shot(page, "alerts")
    no_errors(page)


def test_monitors_view_shows_state_last_next_and_recent_runs(page, alerting):
    monitors = {m["name"]: m for m in httpx.get(alerting["gw"] + "/v1/monitors").json()["monitors"]}
    page.goto(alerting["dash"] + "/monitors")
    rows = page.locator("#monitors-rows tbody tr")
    expect(rows).to_have_count(len(monitors))
    etch = page.locator("#monitors-rows tbody tr", has_text="etch-lots")
    expect(etch.locator(".badge-mon-" + monitors["etch-lots"]["state"])).to_have_count(1)
    expect(etch.locator(".run")).to_have_count(len(monitors["etch-lots"]["recent_runs"]))
    expect(etch.locator(".run-failed")).to_have_count(1)
    expect(etch).to_contain_text("every 1h")
    expect(etch).to_contain_text("failed")  # its last run
    nightly = page.locator("#monitors-rows tbody tr", has_text="nightly-etl")
    expect(nightly).to_contain_text("cron 0 2 * * * (Europe/Berlin)")
    # The next expected run: up to a day ahead, so in hours, or minutes in the hour before it.
    expect(nightly).to_contain_text(re.compile(r"\(in (\d+h \d+m|\d+m \d+s|\d+\.\d s)\)"))
    shot(page, "monitors")
    no_errors(page)


def test_live_view_badges_count_firing_alerts_per_site_and_app(page, alerting):
    page.goto(alerting["dash"] + "/")
    badge = page.locator("#live-alerts .alert-badge")
    expect(badge).to_have_count(1)
    expect(badge).to_have_text("fab1 · etch: 2")
    badge.click()
    expect(page).to_have_url(re.compile(r"/alerts\?site=fab1&app=etch$"))
    expect(page.locator("#alerts-app")).to_have_value("etch")
    expect(page.locator("#alerts-firing-table tbody tr")).to_have_count(2)
    no_errors(page)


def test_only_who_signs_in_with_an_admin_token_may_silence(page, alerting):
    base = alerting["sdash"]
    page.goto(base + "/alerts")
    page.locator("#token").fill(READ)
    page.locator("#login-submit").click()
    rows = page.locator("#alerts-firing-table tbody tr")
    expect(rows).to_have_count(2)
    page.wait_for_timeout(1500)  # a refresh or two: still no button
    expect(page.locator("#alerts-firing-table button")).to_have_count(0)
    page.locator("#nav-signout").click()

    page.goto(base + "/alerts")
    page.locator("#token").fill(ADMIN)
    page.locator("#login-submit").click()
    expect(page.locator("#alerts-firing-table button", has_text="Silence")).to_have_count(2)
    assert ADMIN not in page.content()
    # the silence goes out with the signed-in admin's token (the dashboard's own is read-only)
    row = page.locator("#alerts-firing-table tbody tr", has_text="etch: 1 of the last 5")
    row.locator("button", has_text="Silence").click()
    page.locator("#silence-author").fill("Grace")
    page.locator("#silence-reason").fill("known flaky lot")
    page.locator("#silence-submit").click()
    expect(page.locator("#silence-done")).to_contain_text("by Grace: known flaky lot")
    headers = {"Authorization": f"Bearer {READ}"}
    [silence] = httpx.get(alerting["sgw"] + "/v1/silences", headers=headers).json()["silences"]
    assert silence["matchers"]["rule"] == "etch-failures"
    cookie = next(c for c in page.context.cookies() if c["name"] == "wafermon_session")
    assert ADMIN not in cookie["value"]
    no_errors(page)


def test_a_gateway_without_alerting_shows_no_badges_and_says_so(page, stack):
    page.goto(stack.dashboard + "/")
    expect(page.locator("#live-running")).to_have_text(re.compile(r"^\d+\+?$"))
    expect(page.locator("#live-alerts .alert-badge")).to_have_count(0)
    page.goto(stack.dashboard + "/alerts")
    expect(page.locator("#alerts-error .notice")).to_contain_text("alerting is not enabled")
    expect(page.locator("#alerts-error .notice-error")).to_have_count(0)
    page.goto(stack.dashboard + "/monitors")
    expect(page.locator("#monitors-error .notice")).to_contain_text("gateway.alerting.enabled")
    no_errors(page)


def test_central_dashboard_shows_every_sites_alerts_and_no_silence_form(page, alerting):
    merged = httpx.get(alerting["central"] + "/v1/alerts", params={"status": "firing"}).json()
    assert merged["alerts"]
    assert all(a["site"] == "fab1" for a in merged["alerts"])
    page.goto(alerting["cdash"] + "/alerts")
    rows = page.locator("#alerts-firing-table tbody tr")
    expect(rows).to_have_count(len(merged["alerts"]))
    expect(page.locator(".missing-sites")).to_contain_text("fab3")
    expect(page.locator("#alerts-firing-table button")).to_have_count(0)  # writes go to a site
    expect(page.locator("#alerts-history-table tbody tr")).to_have_count(1)
    choose(page, "alerts-site", "fab1")
    expect(rows).to_have_count(len(merged["alerts"]))
    page.goto(alerting["cdash"] + "/")
    badge = page.locator("#live-alerts .alert-badge")
    expect(badge).to_have_text(f"fab1 · etch: {len(merged['alerts'])}")
    page.goto(alerting["cdash"] + "/monitors")
    expect(page.locator("#page .notice")).to_contain_text("Monitors belong to a site's gateway")
    no_errors(page)
