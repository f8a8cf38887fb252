"""GET /v1/jobs, /v1/subjobs, /v1/jobs/{id}: filters, order, pagination, detail, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from wafermon import Metrics, encode_array


@pytest.fixture
async def lots(client, make_event, t0):
    """Three jobs (one failed, one finished, one running) and two subjobs of lot-a."""
    t = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    events = [
        make_event(entity_id="lot-a", time=t(0), business_key="B1"),
        make_event(
            entity_id="lot-a",
            time=t(50),
            kind="finished",
            business_key="B1",
            metrics=Metrics(duration_s=50),
        ),
        make_event(entity_id="lot-b", time=t(10), app="litho", business_key="B2"),
        make_event(entity_id="lot-b", time=t(20), app="litho", business_key="B2", kind="failed"),
        make_event(entity_id="lot-c", time=t(30), site_id="fab2"),
        make_event(
            entity_type="subjob", entity_id="w1", parent_id="lot-a", time=t(1), sub_key="S1"
        ),
        make_event(entity_type="subjob", entity_id="w2", parent_id="lot-a", time=t(2)),
        make_event(
            entity_type="subjob", entity_id="w2", parent_id="lot-a", time=t(3), kind="failed"
        ),
    ]
    r = await client.post("/v1/ingest/managed", content=encode_array(events))
    assert r.json()["accepted"] == len(events)
    return client


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["entity_id"] for item in response.json()["items"]]


async def test_jobs_newest_start_first_by_default(lots):
    assert ids(await lots.get("/v1/jobs")) == ["lot-c", "lot-b", "lot-a"]
    assert ids(await lots.get("/v1/jobs?sort=start_time")) == ["lot-a", "lot-b", "lot-c"]
    assert ids(await lots.get("/v1/jobs?sort=-updated_at")) == ["lot-a", "lot-c", "lot-b"]


async def test_job_state_fields(lots, t0):
    (lot_a,) = [
        j for j in (await lots.get("/v1/jobs")).json()["items"] if j["entity_id"] == "lot-a"
    ]
    assert lot_a["status"] == "finished"
    assert lot_a["duration_s"] == 50
    assert lot_a["business_key"] == "B1"
    assert lot_a["start_time"] == t0.isoformat().replace("+00:00", "Z")
    assert lot_a["event_count"] == 2
    assert not any(key.endswith("_stamp") for key in lot_a)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", ["lot-b"]),
        ("app=litho", ["lot-b"]),
        ("site=fab2", ["lot-c"]),
        ("business_key=B1", ["lot-a"]),
        ("since={t10}", ["lot-c", "lot-b"]),
        ("until={t10}", ["lot-a"]),
        ("since={t10}&until={t30}", ["lot-b"]),
    ],
)
async def test_job_filters(lots, t0, query, expected):
    stamp = lambda s: (t0 + timedelta(seconds=s)).isoformat().replace("+00:00", "Z")  # noqa: E731
    query = query.format(t10=stamp(10), t30=stamp(30))
    assert ids(await lots.get(f"/v1/jobs?{query}")) == expected


async def test_subjobs_of_one_job(lots):
    assert ids(await lots.get("/v1/subjobs?parent_id=lot-a&sort=start_time")) == ["w1", "w2"]
    assert ids(await lots.get("/v1/subjobs?status=failed")) == ["w2"]
    assert ids(await lots.get("/v1/subjobs?sub_key=S1")) == ["w1"]
    assert ids(await lots.get("/v1/subjobs?parent_id=lot-b")) == []


async def test_pagination_walks_every_job_once(client, make_event):
    events = [make_event(entity_id=f"p{i:02d}") for i in range(25)]
    await client.post("/v1/ingest/managed", content=encode_array(events))
    seen, cursor, pages = [], None, 0
    while True:
        url = "/v1/jobs?limit=10" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url)).json()
        seen += [item["entity_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"p{i:02d}" for i in reversed(range(25))]


async def test_job_detail_has_subjobs_and_events(lots):
    r = await lots.get("/v1/jobs/lot-a")
    assert r.status_code == 200
    detail = r.json()
    assert detail["job"]["entity_id"] == "lot-a"
    assert sorted(s["entity_id"] for s in detail["subjobs"]) == ["w1", "w2"]
    assert [e["kind"] for e in detail["events"]] == ["started", "finished"]
    assert detail["events"][0]["schema_version"] == 1
    limited = (await lots.get("/v1/jobs/lot-a?events_limit=1")).json()
    assert len(limited["events"]) == 1


async def test_unknown_job_is_404(client):
    r = await client.get("/v1/jobs/nope")
    assert r.status_code == 404
    assert "nope" in r.json()["error"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("status=exploded", "status"),
        ("sort=name", "sort"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("stauts=failed", "stauts"),
        ("parent_id=lot-a", "parent_id"),  # only /v1/subjobs filters by parent
        ("site=", "site"),
        ("app=a&app=b", "app"),
        ("cursor=not-a-cursor", "cursor"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(client, query, param):
    r = await client.get(f"/v1/jobs?{query}")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["problems"][0]["path"] == param
    assert param in body["error"]


async def test_job_ids_may_contain_slashes(start_gateway, make_event):
    event = make_event(entity_id="lot-4711/w03")
    async with start_gateway() as (client, _app):
        await client.post("/v1/ingest/managed", content=encode_array([event]))
        response = await client.get("/v1/jobs/lot-4711%2Fw03")
    assert response.status_code == 200, response.text
    assert response.json()["job"]["entity_id"] == "lot-4711/w03"
