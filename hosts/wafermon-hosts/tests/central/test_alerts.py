"""Central's GET /v1/alerts: two real gateways with alerting (each its own store and site),
merged firing first then newest, each alert with its site_id and site, paged across sites."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

from tests.helpers.alerting import (
    alerting_config,
    alerting_gateway,
    post,
    run,
    running_receiver,
    step,
)
from tests.helpers.central import central_client

T = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
RULE = {"name": "any-failure", "type": "failure_rate", "failures": 1, "of_last": 1}


async def test_alerts_of_every_site_merged_and_paged(tmp_path, plugins):
    async with AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(running_receiver())
        gateways = {}
        for n, site in enumerate(("fab1", "fab2")):
            root = tmp_path / site
            root.mkdir()
            config = alerting_config(
                root, f"sqlite+aiosqlite:///{root}/w.db", receiver.url, site_id=site, rules=[RULE]
            )
            gw = await stack.enter_async_context(alerting_gateway(plugins, config, T))
            # fab2's failure is newer, and fab1 has a resolved one as well
            when = T + timedelta(minutes=10 * n)
            await post(gw, run(when, job=f"{site}-a", ok=False, site_id=site))
            await step(gw, to=when + timedelta(minutes=6))
            gateways[site] = gw
        fab1 = gateways["fab1"]
        await post(fab1, run(T + timedelta(minutes=20), job="fab1-b", site_id="fab1"))
        await step(fab1, to=T + timedelta(minutes=26))
        await post(
            fab1, run(T + timedelta(minutes=30), job="fab1-c", ok=False, site_id="fab1", app="load")
        )
        await step(fab1, to=T + timedelta(minutes=36))

        sites = {name: gw.url for name, gw in gateways.items()}
        client, _app = await stack.enter_async_context(central_client(tmp_path, sites))
        everything = (await client.get("/v1/alerts", params={"status": "all"})).json()
        got = [(a["site"], a["site_id"], a["status"]) for a in everything["alerts"]]
        assert got == [
            ("fab1", "fab1", "firing"),  # app load, started at +36 min
            ("fab2", "fab2", "firing"),  # started at +16 min
            ("fab1", "fab1", "resolved"),  # app etl, started at +6 min
        ]
        assert {s: v["status"] for s, v in everything["sites"].items()} == {
            "fab1": "ok",
            "fab2": "ok",
        }

        paged, cursor = [], None
        while True:
            params = {"status": "all", "limit": "1", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/alerts", params=params)).json()
            paged += [(a["site"], a["status"]) for a in page["alerts"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == [(s, st) for s, _id, st in got]

        firing = (await client.get("/v1/alerts", params={"site": "fab2"})).json()
        assert [a["site"] for a in firing["alerts"]] == ["fab2"]
        bad = await client.get("/v1/alerts", params={"cursor": "nonsense"})
        assert bad.status_code == 400
