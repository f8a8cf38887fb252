"""GET /v1/trends and /v1/trends/sources with a source that is a core TrendSource.

The source here is a small real component registered like a plugin's (tests/helpers/trends.py);
the cloudwatch source against moto_server is tested end to end, through a real gateway process
and the dashboard, in hosts/wafermon-dashboard/tests/test_db_trends.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers.trends import TrendPlugin
from wafermon_hosts.gateway.trends import default_period


@pytest.fixture
def trend_gateway(plugins, start_gateway):
    plugins.register(TrendPlugin(), "trend-test")
    sources = [
        {"name": "metrics", "type": "counting"},
        {"name": "archive", "type": "filesystem", "config": {"root": "/nonexistent"}},
    ]
    return lambda: start_gateway(sources=sources)


async def test_sources_lists_only_trend_sources_with_their_metrics(trend_gateway):
    async with trend_gateway() as (client, _app):
        body = (await client.get("/v1/trends/sources")).json()
    assert body == {
        "sources": {
            "metrics": {
                "metrics": {"JobsFailed": "Count", "JobDuration": "Seconds"},
                "stats": ["sum", "avg", "min", "max", "count"],
            }
        }
    }


async def test_a_trend_is_the_sources_series_in_range_oldest_first(trend_gateway):
    params = {"source": "metrics", "metric": "JobsFailed", "since": "2026-12-01T10:00:00Z",
              "until": "2026-12-01T11:00:00Z", "period": "600", "stat": "max"}  # fmt: skip
    async with trend_gateway() as (client, _app):
        body = (await client.get("/v1/trends", params=params)).json()
        by_app = (await client.get("/v1/trends", params={**params, "by": "app"})).json()
    assert {k: body[k] for k in ("source", "metric", "unit", "stat", "period", "site")} == {
        "source": "metrics", "metric": "JobsFailed", "unit": "Count", "stat": "max",
        "period": 600, "site": "fab1",
    }  # fmt: skip
    [series] = body["series"]
    assert (series["name"], series["app"]) == ("fab1", None)
    assert [p["time"] for p in series["points"]] == [
        f"2026-12-01T10:{m}0:00Z" for m in range(6)
    ]  # sorted, and the point after `until` dropped
    assert [p["value"] for p in series["points"]] == [0, 1, 2, 3, 4, 5]
    assert [s["name"] for s in by_app["series"]] == ["etch", "litho"]


async def test_without_a_range_the_last_day_in_five_minute_points(trend_gateway):
    async with trend_gateway() as (client, _app):
        body = (await client.get("/v1/trends?source=metrics&metric=JobDuration")).json()
    assert body["period"] == 300
    assert len(body["series"][0]["points"]) == 288
    assert body["unit"] == "Seconds"


@pytest.mark.parametrize(
    ("query", "parameter", "says"),
    [
        ("metric=JobsFailed", "source", "required (trend sources: metrics)"),
        ("source=archive&metric=JobsFailed", "source", "'archive' is not a source that"),
        ("source=metrics", "metric", "required"),
        ("source=metrics&metric=Nope", "metric", "this source has: JobDuration, JobsFailed"),
        ("source=metrics&metric=JobsFailed&period=90", "period", "multiple of 60"),
        ("source=metrics&metric=JobsFailed&period=30", "period", "from 60 to 86400"),
        ("source=metrics&metric=JobsFailed&since=2026-11-01T00:00:00Z&until=2026-12-01T00:00:00Z"
         "&period=60", "period", "more than 1440: use at least 1800s"),
        ("source=metrics&metric=JobsFailed&since=2026-12-01T00:00:00Z"
         "&until=2026-12-01T00:00:00Z", "until", "must be after start"),
        ("source=metrics&metric=JobsFailed&stat=p99", "stat", "must be one of"),
        ("source=metrics&metric=JobsFailed&by=site", "by", "must be one of app"),
        ("source=metrics&metric=JobsFailed&by=app&app=etch", "by", "either one app or"),
        ("source=metrics&metric=JobsFailed&since=yesterday", "since", "ISO 8601"),
        ("source=metrics&metric=JobsFailed&stauts=x", "stauts", "unknown parameter"),
    ],
)  # fmt: skip
async def test_bad_parameters_are_400_naming_the_parameter(trend_gateway, query, parameter, says):
    async with trend_gateway() as (client, _app):
        response = await client.get("/v1/trends?" + query)
    assert response.status_code == 400, response.text
    [problem] = response.json()["problems"]
    assert problem["path"] == parameter
    assert says in problem["message"]


async def test_a_failing_source_is_a_502_saying_why(trend_gateway):
    async with trend_gateway() as (client, _app):
        response = await client.get("/v1/trends?source=metrics&metric=JobsFailed&app=boom")
    assert response.status_code == 502
    assert "source 'metrics' failed: ConnectionRefusedError" in response.json()["error"]


async def test_trends_need_the_read_scope(plugins, start_gateway):
    plugins.register(TrendPlugin(), "trend-test")
    tokens = {"read": "read-token-0123456789abcdef", "ingest": "ingest-token-0123456789abcde"}
    async with start_gateway(
        gateway={"tokens": tokens}, sources=[{"name": "metrics", "type": "counting"}]
    ) as (client, _app):
        url = "/v1/trends?source=metrics&metric=JobsFailed"
        assert (await client.get(url)).status_code == 401
        bearer = {"Authorization": "Bearer ingest-token-0123456789abcde"}
        assert (await client.get(url, headers=bearer)).status_code == 403
        bearer = {"Authorization": "Bearer read-token-0123456789abcdef"}
        assert (await client.get(url, headers=bearer)).status_code == 200
        assert (await client.get("/v1/trends/sources")).status_code == 401


def test_the_default_period_keeps_charts_small():
    from datetime import UTC, datetime

    t = datetime(2026, 12, 1, tzinfo=UTC)
    assert default_period(t, t + timedelta(minutes=15)) == 60
    assert default_period(t, t + timedelta(days=1)) == 300
    assert default_period(t, t + timedelta(days=3)) == 900
    assert default_period(t, t + timedelta(days=7)) == 3600
    assert default_period(t, t + timedelta(days=400)) == 86400
