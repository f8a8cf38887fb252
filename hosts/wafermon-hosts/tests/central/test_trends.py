"""Central's GET /v1/trends (one site's, passed through) and /v1/trends/sources (every site's),
against real gateways, one of them with a trend source (tests/helpers/trends.py)."""

from __future__ import annotations

import contextlib

import pytest

from tests.helpers.central import central_client, dead_url, site_gateway
from tests.helpers.trends import TrendPlugin

RANGE = {"since": "2026-12-01T10:00:00Z", "until": "2026-12-01T11:00:00Z", "period": "600"}


@contextlib.asynccontextmanager
async def three_sites(tmp_path, plugins):
    """fab1 with a trend source, fab2 without, fab3 dead; central in front."""
    plugins.register(TrendPlugin(), "trend-test")
    metrics = [{"name": "metrics", "type": "counting"}]
    async with (
        site_gateway(tmp_path, plugins, "fab1", sources=metrics) as fab1,
        site_gateway(tmp_path, plugins, "fab2") as fab2,
    ):
        sites = {"fab1": fab1, "fab2": fab2, "fab3": dead_url()}
        async with central_client(tmp_path, sites) as (client, _app):
            yield client


async def test_trend_sources_of_every_site(tmp_path, plugins):
    async with three_sites(tmp_path, plugins) as client:
        body = (await client.get("/v1/trends/sources")).json()
    sites = body["sites"]
    assert sites["fab1"]["status"] == "ok"
    assert sites["fab1"]["sources"]["metrics"]["metrics"] == {
        "JobsFailed": "Count",
        "JobDuration": "Seconds",
    }
    assert (sites["fab2"]["status"], sites["fab2"]["sources"]) == ("ok", {})
    assert sites["fab3"]["status"] == "failed"
    assert "sources" not in sites["fab3"]


async def test_a_trend_is_the_sites_gateway_answer(tmp_path, plugins):
    params = {"site": "fab1", "source": "metrics", "metric": "JobsFailed", "by": "app", **RANGE}
    async with three_sites(tmp_path, plugins) as client:
        body = (await client.get("/v1/trends", params=params)).json()
    assert (body["site"], body["period"], body["unit"]) == ("fab1", 600, "Count")
    assert [s["name"] for s in body["series"]] == ["etch", "litho"]
    assert [p["value"] for p in body["series"][0]["points"]] == [0, 1, 2, 3, 4, 5]
    assert body["sites"]["fab1"]["status"] == "ok"


@pytest.mark.parametrize(
    ("query", "status", "path", "says"),
    [
        ("source=metrics&metric=JobsFailed", 400, "site", "exactly one site"),
        ("site=fab1,fab2&source=metrics&metric=JobsFailed", 400, "site", "exactly one site"),
        ("site=fab9&source=metrics&metric=JobsFailed", 400, "site", "unknown site 'fab9'"),
        ("site=fab1&source=metrics&metric=Nope", 400, "metric", "unknown metric 'Nope'"),
        ("site=fab1&source=metrics&metric=JobsFailed&period=7", 400, "period", "from 60"),
        ("site=fab2&source=metrics&metric=JobsFailed", 400, "source", "trend sources: none"),
        ("site=fab1&metric=JobsFailed&stauts=x", 400, "stauts", "unknown parameter"),
    ],
)
async def test_faults_are_400_naming_the_parameter(tmp_path, plugins, query, status, path, says):
    async with three_sites(tmp_path, plugins) as client:
        response = await client.get("/v1/trends?" + query)
    assert response.status_code == status, response.text
    [problem] = response.json()["problems"]
    assert problem["path"] == path
    assert says in problem["message"]


async def test_a_dead_site_or_failing_source_is_a_502(tmp_path, plugins):
    async with three_sites(tmp_path, plugins) as client:
        dead = await client.get("/v1/trends?site=fab3&source=metrics&metric=JobsFailed")
        failing = await client.get("/v1/trends?site=fab1&source=metrics&metric=JobsFailed&app=boom")
    assert dead.status_code == 502
    assert dead.json()["error"].startswith("site fab3: ")
    assert failing.status_code == 502
    assert "source 'metrics' failed: ConnectionRefusedError" in failing.json()["error"]
