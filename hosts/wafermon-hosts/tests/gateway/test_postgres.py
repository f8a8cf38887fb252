"""The whole gateway on PostgreSQL, over real HTTP: ingest, jobs, detail, unified, stream, health.

Needs WAFERMON_TEST_PG_URL (scripts/test starts PostgreSQL and sets it); fails without it.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson

from tests.helpers.gateway import served
from wafermon import encode_array, to_json_dict


async def test_full_gateway_on_postgresql(build_app, pg_url, make_event, tmp_path):
    managed = [{"name": "managed", "type": "sql", "config": {"url": pg_url}}]
    archive = tmp_path / "archive"
    sources = [{"name": "archive", "type": "filesystem", "config": {"root": str(archive)}}]
    app = build_app(
        backends=managed, sources=sources, gateway={"tokens": {"ingest": "tok", "read": "tok"}}
    )
    auth = {"Authorization": "Bearer tok"}  # one token listed under both scopes holds both
    lot = [
        make_event(entity_id="lot-1", business_key="B-1"),
        make_event(entity_type="subjob", entity_id="lot-1/w1", parent_id="lot-1"),
        make_event(entity_type="subjob", entity_id="lot-1/w1", parent_id="lot-1", kind="failed"),
        make_event(entity_id="lot-1", business_key="B-1", kind="finished"),
    ]
    bad = {**to_json_dict(make_event()), "site_id": "no spaces allowed"}

    # The token holds ingest and read: every request of this client carries it.
    client = httpx.AsyncClient(timeout=20, headers=auth)
    async with served(app) as url, client as http:
        http.base_url = url
        health = await http.get("/v1/healthz", headers=auth)
        assert health.json()["store"]["ok"] is True
        async with http.stream("GET", "/v1/stream?app=etch") as stream:
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("retry:")

            body = orjson.dumps([to_json_dict(e) for e in lot[:2]] + [bad])
            r = await http.post("/v1/ingest/managed", content=body, headers=auth)
            assert r.status_code == 200, r.text
            assert [(x["index"], x["status"]) for x in r.json()["results"]] == [(2, "rejected")]
            assert r.json()["results"][0]["errors"][0]["path"] == "$.site_id"
            r = await http.post("/v1/ingest/managed", content=encode_array(lot), headers=auth)
            assert (r.json()["accepted"], r.json()["duplicates"]) == (2, 2)

            data = []
            while len(data) < 4:
                line = await asyncio.wait_for(anext(lines), 10)
                if line.startswith("data:"):
                    data.append(orjson.loads(line[5:])["event_id"])
            assert data == [str(e.event_id) for e in lot]

        jobs = (await http.get("/v1/jobs?business_key=B-1")).json()["items"]
        assert [(j["entity_id"], j["status"], j["event_count"]) for j in jobs] == [
            ("lot-1", "finished", 2)
        ]
        subjobs = (await http.get("/v1/subjobs?parent_id=lot-1")).json()["items"]
        assert [(s["entity_id"], s["status"]) for s in subjobs] == [("lot-1/w1", "failed")]
        detail = (await http.get("/v1/jobs/lot-1")).json()
        assert [e["kind"] for e in detail["events"]] == ["started", "finished"]
        assert [s["entity_id"] for s in detail["subjobs"]] == ["lot-1/w1"]
        assert (await http.get("/v1/jobs/lot-404")).status_code == 404

        unified = (await http.get("/v1/data/unified?limit=3")).json()
        assert [e["event_id"] for e in unified["events"]] == [str(e.event_id) for e in lot[:3]]
        assert unified["sources"]["managed"] == {"status": "ok", "count": 3}
        assert unified["sources"]["archive"] == {"status": "ok", "count": 0}
        rest = (await http.get(f"/v1/data/unified?cursor={unified['next_cursor']}")).json()
        assert [e["event_id"] for e in rest["events"]] == [str(lot[3].event_id)]
        assert rest["next_cursor"] is None

        external = await http.post(
            "/v1/query/external", json={"source": "managed", "query": {"status": "failed"}}
        )
        assert [e["entity"]["id"] for e in external.json()["events"]] == ["lot-1/w1"]
        assert app.state.gateway.store_type == "sql"
        assert await app.state.gateway.run_retention() == 0
