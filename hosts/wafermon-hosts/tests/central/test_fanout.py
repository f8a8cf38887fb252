"""Central over real gateways: one healthy, one slow, one dead -> partial answers, in time."""

from __future__ import annotations

import time

import pytest

from tests.helpers.central import (
    central_client,
    dead_url,
    job_events,
    metric,
    serve_app,
    site_gateway,
)

TIMEOUT = 0.5  # central's per-site deadline in these tests
SLOW = 5.0  # how long the slow site holds every answer


@pytest.fixture
async def three_sites(tmp_path, plugins):
    """fab1 healthy (3 jobs), fab2 slow (2 jobs), fab3 dead; central in front of them."""
    fab1 = job_events("fab1", [("a1", 10), ("a2", 20), ("a3", 30)], failed=["a2"])
    fab2 = job_events("fab2", [("b1", 15), ("b2", 25)])
    async with (
        site_gateway(tmp_path, plugins, "fab1", fab1) as url1,
        site_gateway(tmp_path, plugins, "fab2", fab2, delay=SLOW) as url2,
    ):
        sites = {"fab1": url1, "fab2": url2, "fab3": dead_url()}
        async with central_client(tmp_path, sites, site_timeout=f"{TIMEOUT}s") as (client, app):
            yield client, app


async def timed(client, path: str, **kw):
    began = time.perf_counter()
    response = await client.get(path, **kw)
    return response, time.perf_counter() - began


async def test_job_list_names_the_slow_and_the_dead_site_and_answers_within_the_timeout(
    three_sites,
):
    client, _app = three_sites
    response, took = await timed(client, "/v1/jobs")
    assert response.status_code == 200
    assert took < TIMEOUT + 1.0, f"took {took:.2f}s"
    body = response.json()
    assert [(i["site"], i["entity_id"]) for i in body["items"]] == [
        ("fab1", "a3"),
        ("fab1", "a2"),
        ("fab1", "a1"),
    ]
    sites = body["sites"]
    assert sites["fab1"]["status"] == "ok"
    assert sites["fab1"]["count"] == 3
    assert sites["fab2"]["status"] == "timed_out"
    assert "0.5s" in sites["fab2"]["error"]
    assert sites["fab3"]["status"] == "failed"
    assert "Connect" in sites["fab3"]["error"]
    assert body["next_cursor"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/subjobs?status=finished",
        "/v1/data/unified?entity_type=job",
        "/v1/jobs?site=fab1,fab2,fab3&status=failed",
    ],
)
async def test_every_fan_out_route_answers_partially(three_sites, path):
    client, _app = three_sites
    response, took = await timed(client, path)
    assert response.status_code == 200, response.text
    assert took < TIMEOUT + 1.0
    sites = response.json()["sites"]
    assert (sites["fab1"]["status"], sites["fab2"]["status"], sites["fab3"]["status"]) == (
        "ok",
        "timed_out",
        "failed",
    )


async def test_unified_merges_per_site_source_statuses(three_sites):
    client, _app = three_sites
    body = (await client.get("/v1/data/unified?entity_type=job&limit=4")).json()
    assert len(body["events"]) == 4
    times = [e["time"] for e in body["events"]]
    assert times == sorted(times)
    assert body["sites"]["fab1"]["sources"] == {"managed": {"status": "ok", "count": 4}}
    assert body["next_cursor"] is not None
    rest = (
        await client.get(f"/v1/data/unified?entity_type=job&limit=4&cursor={body['next_cursor']}")
    ).json()
    assert len(rest["events"]) == 2  # 3 jobs x 2 events in fab1
    assert rest["next_cursor"] is None
    seen = {e["event_id"] for e in body["events"]} | {e["event_id"] for e in rest["events"]}
    assert len(seen) == 6


async def test_job_detail_is_found_on_the_site_that_has_it(three_sites):
    client, _app = three_sites
    response, took = await timed(client, "/v1/jobs/a2")
    assert response.status_code == 200
    assert took < TIMEOUT + 1.0
    body = response.json()
    assert body["site"] == "fab1"
    assert body["job"]["status"] == "failed"
    assert [s["entity_id"] for s in body["subjobs"]] == ["a2/w01"]
    assert body["sites"]["fab2"]["status"] == "timed_out"


async def test_unknown_job_is_404_naming_the_missing_sites(three_sites):
    client, _app = three_sites
    response = await client.get("/v1/jobs/nope")
    assert response.status_code == 404
    body = response.json()
    assert "missing: fab2, fab3" in body["error"]
    assert body["sites"]["fab1"]["status"] == "rejected"


async def test_healthz_reports_each_site_and_degrades(three_sites):
    client, _app = three_sites
    response, took = await timed(client, "/v1/healthz")
    assert response.status_code == 200
    assert took < TIMEOUT + 1.0
    body = response.json()
    assert body["status"] == "degraded"
    fab1, fab2, fab3 = (body["sites"][n] for n in ("fab1", "fab2", "fab3"))
    assert fab1["reachable"] is True
    assert fab1["status"] == "ok"
    assert fab1["latency_ms"] >= 0
    assert fab2["reachable"] is False
    assert "no answer within" in fab2["error"]
    assert fab3["reachable"] is False


async def test_metrics_count_partial_answers_and_site_outcomes(three_sites):
    client, _app = three_sites
    await client.get("/v1/jobs")
    text = (await client.get("/metrics")).text
    assert metric(text, "wafermon_central_partial_answers_total", route="/v1/jobs") == 1
    assert (
        metric(text, "wafermon_central_site_requests_total", site="fab2", outcome="timed_out") == 1
    )
    assert metric(text, "wafermon_central_site_requests_total", site="fab3", outcome="failed") == 1
    assert metric(text, "wafermon_central_site_up", site="fab1") == 1
    assert metric(text, "wafermon_central_site_up", site="fab3") == 0
    assert 'wafermon_http_requests_total{method="GET",route="/v1/jobs",status="200"}' in text


async def test_no_site_reachable_is_an_empty_answer_and_health_down(tmp_path):
    async with central_client(tmp_path, {"fab1": dead_url(), "fab2": dead_url()}) as (client, _):
        response = await client.get("/v1/jobs")
        assert response.status_code == 200
        body = response.json()
        assert body["items"] == []
        assert body["next_cursor"] is None
        assert {s["status"] for s in body["sites"].values()} == {"failed"}
        health = await client.get("/v1/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "down"


async def test_a_site_whose_store_is_down_is_reachable_but_missing(tmp_path, plugins):
    from tests.helpers.gateway import FlakySqlStore

    events = job_events("fab1", [("a1", 10)])
    async with (
        site_gateway(tmp_path, plugins, "fab1", events, store_type="flaky-sql") as url,
        central_client(tmp_path, {"fab1": url}) as (client, _app),
    ):
        assert len((await client.get("/v1/jobs")).json()["items"]) == 1
        FlakySqlStore.down = True  # the gateway answers 503 to lists, "down" to health
        body = (await client.get("/v1/jobs?status=failed")).json()
        assert body["items"] == []
        assert body["sites"]["fab1"]["status"] == "failed"
        assert "HTTP 503" in body["sites"]["fab1"]["error"]
        assert "managed store is unavailable" in body["sites"]["fab1"]["error"]
        health = await client.get("/v1/healthz")
        assert health.status_code == 200
        site = health.json()["sites"]["fab1"]
        assert (site["reachable"], site["status"]) == (True, "down")
        assert health.json()["status"] == "degraded"


async def test_a_site_answering_nonsense_counts_as_failed_not_as_a_server_error(tmp_path, plugins):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def nonsense(_request):
        return JSONResponse({"items": [{"entity_id": 7}], "events": [{"time": "yesterday"}]})

    odd = Starlette(routes=[Route("/v1/{path:path}", nonsense)])
    events = job_events("fab1", [("a1", 10)])
    async with (
        site_gateway(tmp_path, plugins, "fab1", events) as url,
        serve_app(odd) as odd_url,
        central_client(tmp_path, {"fab1": url, "odd": odd_url}) as (client, _app),
    ):
        for path in ("/v1/jobs", "/v1/subjobs", "/v1/data/unified"):
            body = (await client.get(path)).json()
            assert body["sites"]["fab1"]["status"] == "ok", path
            assert body["sites"]["odd"]["status"] == "failed", path
            assert "not a valid page" in body["sites"]["odd"]["error"]
        assert (await client.get("/v1/jobs/a1")).json()["site"] == "fab1"
