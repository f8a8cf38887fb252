"""Every view in headless Chromium, against real gateways, central and a sidecar.

Load each view, apply filters, open a job and see its subjobs; in central mode compare sites
and see the dead one named. With $WAFERMON_SCREENSHOTS set, each view's screenshot is saved
there (``WAFERMON_SCREENSHOTS=docs/images`` refreshes the docs' pictures).
"""

from __future__ import annotations

import re

import httpx
import pytest
from db_helpers import screenshot_dir
from playwright.sync_api import expect


def shot(page, name: str) -> None:
    folder = screenshot_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(600)  # let plotly finish its transitions
        page.screenshot(path=str(folder / f"dashboard-{name}.png"), full_page=True)


def choose(page, dropdown_id: str, option: str) -> None:
    """Pick an option of a Dash 4 dropdown."""
    page.locator(f"#{dropdown_id}").click()
    page.locator(".dash-dropdown-option", has_text=re.compile(f"^{option}$")).first.click()


def no_errors(page) -> None:
    assert page.errors == [], page.errors


def test_live_view_shows_counts_and_updates_by_itself(page, stack):
    page.goto(stack.dashboard + "/")
    for card in ("live-running", "live-finished", "live-failed"):
        expect(page.locator(f"#{card}")).to_have_text(re.compile(r"^\d+\+?$"))
    expect(page.locator("#live-rate")).to_contain_text("jobs/min")
    expect(page.locator("#live-recent-table tbody tr")).to_have_count(10)
    expect(page.locator("#live-graph .bars path")).not_to_have_count(0)
    first = page.locator("#live-updated").inner_text()
    expect(page.locator("#live-updated")).not_to_have_text(first, timeout=10_000)  # dcc.Interval
    choose(page, "live-window", "24 hours")
    expect(page.locator("#live-finished")).to_have_text(re.compile(r"^\d{2,}$"))
    finished = int(page.locator("#live-finished").inner_text())
    assert finished >= 60  # 70 seeded lots over 20 hours, a few failed
    shot(page, "live")
    no_errors(page)


def test_job_list_filters_searches_and_pages_on_the_server(page, stack):
    page.goto(stack.dashboard + "/jobs")
    rows = page.locator("#jobs-rows tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator("#jobs-info")).to_have_text("page 1 · 50 jobs on this page")
    shot(page, "jobs")

    page.locator("#jobs-next").click()
    expect(page.locator("#jobs-info")).to_contain_text("page 2")
    expect(rows).to_have_count(24)  # 74 jobs in fab1
    expect(page.locator("#jobs-next")).to_be_disabled()
    page.locator("#jobs-prev").click()
    expect(page.locator("#jobs-info")).to_contain_text("page 1")

    choose(page, "jobs-status", "failed")
    expect(page.locator("#jobs-info")).to_contain_text("page 1")
    failed = httpx.get(f"{stack.gateway}/v1/jobs", params={"status": "failed"}).json()["items"]
    assert failed
    expect(rows).to_have_count(len(failed))
    expect(page.locator("#jobs-rows .badge-finished")).to_have_count(0)

    lot = failed[0]["business_key"]
    page.locator("#jobs-search").fill(lot)
    page.locator("#jobs-search").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(lot)

    page.locator("#jobs-search").fill(failed[0]["entity_id"])  # a job id: exact lookup
    page.locator("#jobs-search").press("Enter")
    expect(rows).to_have_count(1)
    expect(page.locator("#jobs-error")).to_contain_text(f"Job {failed[0]['entity_id']}")
    no_errors(page)


def test_opening_a_job_shows_its_subjobs_timeline_and_charts(page, stack):
    page.goto(stack.dashboard + "/jobs?status=failed")
    link = page.locator("#jobs-rows .job-link").first
    job_id = link.inner_text()
    link.click()
    expect(page).to_have_url(re.compile(f"/job/{job_id}$"))
    detail = httpx.get(f"{stack.gateway}/v1/jobs/{job_id}").json()
    subjobs = detail["subjobs"]
    expect(page.locator("#detail-title")).to_contain_text(job_id)
    expect(page.locator("#detail-subjobs tbody tr")).to_have_count(len(subjobs))
    expect(page.locator("#detail-events tbody tr")).to_have_count(len(detail["events"]))
    # One Gantt bar per subjob, and a bar per subjob in the duration chart.
    expect(page.locator("#detail-gantt .bars path")).to_have_count(len(subjobs))
    expect(page.locator("#detail-duration .bars path")).to_have_count(len(subjobs))
    expect(page.locator("#detail-memory .bars path")).to_have_count(len(subjobs))
    expect(page.locator("#detail-facts")).to_contain_text(detail["job"]["business_key"])
    expect(page.locator(".notice-error")).to_contain_text("LotIncomplete")
    shot(page, "job-detail")

    page.locator("#detail-subjobs .job-link").first.click()  # a subjob's own page
    expect(page.locator("#detail-title")).to_contain_text("Subjob")
    no_errors(page)


def test_history_reads_managed_and_archive_and_the_picker_chooses(page, stack):
    page.goto(stack.dashboard + "/history")
    table = page.locator("#hist-source-table tbody tr")
    expect(table).to_have_count(2)
    expect(page.locator("#hist-source-table")).to_contain_text("archive")
    expect(page.locator("#hist-timeline .bars path")).not_to_have_count(0)
    choose(page, "hist-range", "3 days")
    expect(page.locator("#hist-summary")).to_contain_text("events from managed, archive")
    shot(page, "history")
    page.locator("#hist-sources input[value=archive]").click()
    expect(table).to_have_count(1)
    expect(page.locator("#hist-summary")).to_contain_text("events from managed")
    expect(page.locator("#hist-source-table")).not_to_contain_text("archive")
    no_errors(page)


def test_health_shows_gateway_sources_metrics_and_sidecar_backends(page, stack):
    page.goto(stack.dashboard + "/health")
    expect(page.locator("#health-sources")).to_contain_text("managed store")
    expect(page.locator("#health-sources")).to_contain_text("archive")
    expect(page.locator("#health-backends tbody tr")).to_have_count(1)
    expect(page.locator("#health-backends")).to_contain_text("files")
    expect(page.locator("#health-backends")).to_contain_text("closed")
    expect(page.locator("#health-metrics")).to_contain_text("wafermon_http_requests_total")
    shot(page, "health")
    no_errors(page)


def test_central_mode_compares_sites_and_names_the_dead_one(page, stack):
    page.goto(stack.central_dashboard + "/sites")
    rows = page.locator("#sites-rows tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("fab1")
    expect(rows.nth(1)).to_contain_text("fab2")
    expect(rows.nth(2)).to_contain_text("unreachable")
    expect(page.locator("#sites-counts .bars path")).not_to_have_count(0)
    shot(page, "sites")

    page.goto(stack.central_dashboard + "/jobs")
    expect(page.locator(".missing-sites")).to_contain_text("fab3")
    expect(page.locator("#jobs-rows tbody tr")).to_have_count(50)
    sites = set(page.locator("#jobs-rows tbody tr td:nth-child(2)").all_inner_texts())
    assert sites == {"fab1", "fab2"}
    choose(page, "jobs-site", "fab2")
    expect(page.locator("#jobs-rows tbody tr")).to_have_count(27)
    assert set(page.locator("#jobs-rows tbody tr td:nth-child(2)").all_inner_texts()) == {"fab2"}
    page.locator("#jobs-rows .job-link").first.click()
    expect(page).to_have_url(re.compile(r"/job/.+\?site=fab2$"))
    expect(page.locator("#detail-facts")).to_contain_text("fab2")
    expect(page.locator("#detail-gantt .bars path")).not_to_have_count(0)
    no_errors(page)


@pytest.mark.parametrize("path", ["/", "/jobs", "/history", "/sites", "/health", "/nowhere"])
def test_every_view_of_the_central_dashboard_loads_cleanly(page, stack, path):
    page.goto(stack.central_dashboard + path)
    expect(page.locator("#page h2")).to_be_visible()
    page.wait_for_timeout(1500)  # an Interval tick or two
    expect(page.locator(".notice-error")).to_have_count(0)
    no_errors(page)
