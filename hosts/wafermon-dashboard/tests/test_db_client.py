"""The dashboard's HTTP side without a browser: its API client and serving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from wafermon import Secret
from wafermon_dashboard.client import CENTRAL, Api, ApiError, Sidecar


def test_recent_counts_newest_first_and_says_when_it_stopped_at_the_cap(stack):
    api = Api(stack.gateway)
    since = datetime.now(UTC) - timedelta(hours=48)
    everything, capped = api.recent(status=None, since=since, cap=1000, page=7)
    assert not capped
    assert len(everything) == 74  # 70 finished or failed lots + 4 running, all in fab1
    times = [i["updated_at"] for i in everything]
    assert times == sorted(times, reverse=True)
    some, capped = api.recent(status=None, since=since, cap=10, page=7)
    assert (len(some), capped) == (10, True)
    recent, capped = api.recent(status="running", since=since, cap=1000)
    assert (len(recent), capped) == (4, False)


def test_job_lookup_and_errors(stack):
    api = Api(stack.gateway)
    job = api.jobs(limit=1)["items"][0]
    detail = api.job(job["entity_id"])
    assert detail["job"]["entity_id"] == job["entity_id"]
    assert api.job("no-such-job") is None
    with pytest.raises(ApiError, match="invalid parameter 'status'"):
        api.jobs(status="done")
    with pytest.raises(ApiError, match="cannot reach"):
        Api("http://127.0.0.1:1").health()
    with pytest.raises(ApiError, match="cannot reach the sidecar"):
        Sidecar("http://127.0.0.1:1").health()


def test_central_mode_lists_sites_and_the_union_of_their_sources(stack):
    api = Api(stack.central, mode=CENTRAL)
    assert api.sites() == ["fab1", "fab2", "fab3"]
    assert api.sources() == ["managed", "archive"]
    detail = api.job(api.jobs(site="fab2", limit=1)["items"][0]["entity_id"], site="fab2")
    assert detail["site"] == "fab2"


def test_the_read_token_is_sent_as_a_bearer_token():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    Api("http://gw", token=Secret("s3cret"), transport=httpx.MockTransport(handler)).jobs(limit=1)
    assert seen == ["Bearer s3cret"]


def test_the_route_callback_renders_the_first_page_of_jobs_over_http(stack):
    body = {
        "output": "page.children",
        "outputs": {"id": "page", "property": "children"},
        "inputs": [{"id": "url", "property": "pathname", "value": "/jobs"}],
        "state": [{"id": "url", "property": "search", "value": "?status=failed&size=25"}],
        "changedPropIds": ["url.pathname"],
    }
    response = httpx.post(f"{stack.dashboard}/_dash-update-component", json=body, timeout=30)
    assert response.status_code == 200
    rows = response.text.count('"job-link"')
    failed = httpx.get(f"{stack.gateway}/v1/jobs", params={"status": "failed"}).json()["items"]
    assert rows == min(len(failed), 25)


def test_cached_scripts_get_304_not_a_server_error(stack):
    # Hypercorn's WSGI wrapper fails answers with an empty body unless serve.wsgi_app helps.
    script = f"{stack.dashboard}/_dash-component-suites/dash/dcc/async-dropdown.js"
    first = httpx.get(script)
    assert first.status_code == 200
    again = httpx.get(script, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
