"""Merged pagination across real gateways: every item once, in the global order, any page size."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

import wafermon_hosts.central.merge as merge
from tests.helpers.central import central_client, dead_url, encode_events, job_events, site_gateway

# Interleaved start times, ties across sites (same second) and the same job ids on two sites.
FAB1 = [("x01", 5), ("x02", 10), ("x03", 10), ("x04", 40), ("x05", 41), ("x06", 42), ("x07", 90)]
FAB2 = [("x01", 5), ("y02", 10), ("x03", 11), ("y04", 60), ("y05", 61)]
FAB3 = [("z01", 1), ("z02", 95), ("z03", 96), ("x03", 10)]


@pytest.fixture
async def sites(tmp_path, plugins):
    async with (
        site_gateway(tmp_path, plugins, "fab1", job_events("fab1", FAB1)) as u1,
        site_gateway(tmp_path, plugins, "fab2", job_events("fab2", FAB2, app="litho")) as u2,
        site_gateway(tmp_path, plugins, "fab3", job_events("fab3", FAB3)) as u3,
    ):
        yield {"fab1": u1, "fab2": u2, "fab3": u3}


def expected(sort: str, data: dict[str, list[tuple[str, int]]]) -> list[tuple[str, str]]:
    """(site, job id) in the order central promises: (value, entity_id, site)."""
    rows = [(offset, job, site) for site, jobs in data.items() for job, offset in jobs]
    if "updated_at" in sort:  # jobs finish 40 s after they start: same order as start_time
        rows = [(offset + 40, job, site) for offset, job, site in rows]
    rows.sort(reverse=sort.startswith("-"))
    return [(site, job) for _v, job, site in rows]


async def walk(client, query: str) -> tuple[list[tuple[str, str]], int]:
    """Every item of a merged list, page by page; (items, pages)."""
    items, cursor, pages = [], None, 0
    while True:
        url = f"/v1/jobs?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = await client.get(url, headers={"Cache-Control": "no-cache"})
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items += [(i["site"], i["entity_id"]) for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert pages < 100


@pytest.mark.parametrize("sort", ["-start_time", "start_time", "-updated_at"])
@pytest.mark.parametrize("limit", [1, 3, 7, 100])
async def test_pages_of_any_size_give_every_item_once_in_the_global_order(
    tmp_path, sites, sort, limit
):
    async with central_client(tmp_path, sites) as (client, _app):
        items, pages = await walk(client, f"sort={sort}&limit={limit}")
    data = {"fab1": FAB1, "fab2": FAB2, "fab3": FAB3}
    assert items == expected(sort, data)
    total = sum(len(v) for v in data.values())
    assert pages == max(1, -(-total // limit)) or pages == -(-total // limit) + 1


async def test_the_gateway_page_limit_is_respected_by_rebasing(tmp_path, sites, monkeypatch):
    """With a gateway page limit of 4, a site that gave 3 of a page's 3 candidates... and one
    that gave only part of them must be asked with a fresh cursor instead of a longer page."""
    monkeypatch.setattr(merge, "MAX_ENTITY_LIMIT", 4)
    async with central_client(tmp_path, sites) as (client, _app):
        items, _pages = await walk(client, "sort=-start_time&limit=3")
    assert items == expected("-start_time", {"fab1": FAB1, "fab2": FAB2, "fab3": FAB3})


async def test_one_site_and_filters(tmp_path, sites):
    async with central_client(tmp_path, sites) as (client, _app):
        items, _ = await walk(client, "site=fab2&limit=2")
        assert items == expected("-start_time", {"fab2": FAB2})
        items, _ = await walk(client, "site=fab1,fab2&app=litho&limit=2")
        assert items == expected("-start_time", {"fab2": FAB2})
        since = datetime.fromisoformat(job_events("fab1", [("q", 60)])[0].time.isoformat())
        items, _ = await walk(client, f"since={since.isoformat().replace('+00:00', 'Z')}&limit=2")
        assert items == [("fab3", "z03"), ("fab3", "z02"), ("fab1", "x07"), ("fab2", "y05"),
                         ("fab2", "y04")]  # fmt: skip


async def test_a_dead_site_is_named_on_each_page_and_does_not_keep_the_cursor_alive(
    tmp_path, sites
):
    with_dead = {**sites, "fab9": dead_url()}
    async with central_client(tmp_path, with_dead) as (client, _app):
        first = (await client.get("/v1/jobs?limit=5")).json()
        assert first["sites"]["fab9"]["status"] == "failed"
        items, _ = await walk(client, "limit=5")
    assert items == expected("-start_time", {"fab1": FAB1, "fab2": FAB2, "fab3": FAB3})


async def test_subjobs_merge_and_the_cursor_is_checked(tmp_path, sites):
    async with central_client(tmp_path, sites) as (client, _app):
        body = (await client.get("/v1/subjobs?limit=4&sort=start_time")).json()
        assert [i["entity_id"] for i in body["items"]] == ["z01/w01", "x01/w01", "x01/w01",
                                                             "x02/w01"]  # fmt: skip
        assert [i["site"] for i in body["items"]][1:3] == ["fab1", "fab2"]
        cursor = body["next_cursor"]
        other_sort = await client.get(f"/v1/subjobs?cursor={cursor}")
        assert other_sort.status_code == 400
        assert other_sort.json()["problems"][0]["path"] == "cursor"
        other_sites = await client.get(f"/v1/subjobs?cursor={cursor}&sort=start_time&site=fab1")
        assert other_sites.status_code == 400
        assert "issued for sites" in other_sites.json()["error"]
        garbage = await client.get("/v1/jobs?cursor=not-a-cursor")
        assert garbage.status_code == 400


async def test_jobs_added_between_pages_are_never_repeated_nor_lose_others(tmp_path, sites):
    two = {"fab1": sites["fab1"], "fab2": sites["fab2"]}
    async with central_client(tmp_path, two) as (client, _app):
        first = (await client.get("/v1/jobs?limit=3")).json()
        assert [(i["site"], i["entity_id"]) for i in first["items"]] == [
            ("fab1", "x07"), ("fab2", "y05"), ("fab2", "y04")
        ]  # fmt: skip
        # fab1 gave one of its candidates; now a newer job (n1, before the cursor) and one
        # still ahead of it (n2) arrive at fab1: its page from the same cursor shifts by one.
        new = encode_events(job_events("fab1", [("n1", 100), ("n2", 50)]))
        async with httpx.AsyncClient() as gw:
            response = await gw.post(f"{two['fab1']}/v1/ingest/managed", content=new)
            assert response.json()["accepted"] == 8
        items, cursor = [], first["next_cursor"]
        while cursor:
            body = (await client.get(f"/v1/jobs?limit=3&cursor={cursor}")).json()
            items += [(i["site"], i["entity_id"]) for i in body["items"]]
            cursor = body["next_cursor"]
    rest = expected("-start_time", {"fab1": [*FAB1, ("n2", 50)], "fab2": FAB2})[3:]
    assert items == rest, (items, rest)
