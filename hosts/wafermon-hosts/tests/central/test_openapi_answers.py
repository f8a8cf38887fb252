"""Every operation central documents, called on a live central in front of a real gateway (with
alerting and a trend source) and a dead site: each answer matches the schema central's own
/openapi.json gives for its status, with no field the document does not name
(``tests.helpers.openapi.Answers``); an operation without a checked success fails the test."""

from __future__ import annotations

from tests.helpers.central import central_client, dead_url, job_events, site_gateway
from tests.helpers.openapi import Answers
from tests.helpers.trends import TrendPlugin

TOKENS = {"read": "central-read-token"}


async def test_every_documented_answer_matches_its_schema(tmp_path, plugins):
    plugins.register(TrendPlugin(), "trend-test")
    events = job_events("fab1", [("a", 1), ("b", 2)], failed=["b"])
    async with site_gateway(
        tmp_path,
        plugins,
        "fab1",
        events,
        gateway={"alerting": {"enabled": True}},
        sources=[{"name": "metrics", "type": "counting"}],
    ) as url:
        sites = {"fab1": url, "fab2": dead_url()}
        async with central_client(tmp_path, sites, tokens=TOKENS) as (http, _app):
            answers = await Answers.of(http, TOKENS)
            call = answers.call

            await call("GET", "/openapi.json")
            await call("GET", "/metrics")
            await call("GET", "/-/plugins")
            await call("GET", "/v1/sites")
            answers.check("/v1/sites", await http.get("/v1/sites"))  # 401
            answers.check("/v1/healthz", await http.get("/v1/healthz"))  # the status only
            read = {"Authorization": f"Bearer {TOKENS['read']}"}
            health = await call("GET", "/v1/healthz", headers=read)
            assert health.json()["sites"]["fab2"]["reachable"] is False

            jobs = (await call("GET", "/v1/jobs", params={"limit": 1})).json()
            assert jobs["items"][0]["site"] == "fab1"
            assert jobs["next_cursor"]
            await call("GET", "/v1/jobs", params={"cursor": jobs["next_cursor"], "limit": 1})
            await call("GET", "/v1/jobs", params={"site": "nope"})
            await call("GET", "/v1/subjobs", params={"parent_id": "a"})
            detail = await call("GET", "/v1/jobs/{id}", "/v1/jobs/b")
            assert detail.json()["site"] == "fab1"
            missing = await call("GET", "/v1/jobs/{id}", "/v1/jobs/nope")
            assert missing.status_code == 404
            await call("GET", "/v1/data/unified")
            await call("GET", "/v1/data/unified", params={"since": "yesterday"})
            await call("GET", "/v1/alerts")
            await call("GET", "/v1/trends/sources")
            trend = {"site": "fab1", "source": "metrics", "metric": "JobsFailed"}
            await call("GET", "/v1/trends", params=trend)
            await call("GET", "/v1/trends", params={**trend, "metric": "nope"})
            await call("GET", "/v1/trends", params={**trend, "site": "fab2"})

    assert answers.uncovered() == [], "call these operations here"
