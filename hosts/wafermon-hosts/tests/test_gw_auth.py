"""Bearer tokens: the ingest scope, the read scope, the open paths, and tokens never logged."""

from __future__ import annotations

import io
import json

import pytest

from wafermon import encode_array
from wafermon_hosts.common.logs import configure_logging

INGEST_TOKEN = "ingest-s3cret-token"
READ_TOKEN = "read-s3cret-token"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def secured(start_gateway):
    tokens = {"ingest": INGEST_TOKEN, "read": READ_TOKEN}
    async with start_gateway(gateway={"tokens": tokens}) as (client, _app):
        yield client


async def test_ingest_needs_the_ingest_token(secured, make_event):
    body = encode_array([make_event()])
    r = await secured.post("/v1/ingest/managed", content=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "ingest" in r.json()["error"]
    r = await secured.post("/v1/ingest/managed", content=body, headers=bearer(READ_TOKEN))
    assert r.status_code == 403
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = await secured.post("/v1/ingest/managed", content=body, headers=bearer(INGEST_TOKEN))
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/subjobs", "/v1/data/unified", "/v1/jobs/x"])
async def test_read_endpoints_take_the_read_or_the_ingest_token(secured, path):
    assert (await secured.get(path)).status_code == 401
    assert (await secured.get(path, headers=bearer("wrong"))).status_code == 403
    assert (await secured.get(path, headers={"Authorization": "Basic abc"})).status_code == 401
    for token in (READ_TOKEN, INGEST_TOKEN):
        assert (await secured.get(path, headers=bearer(token))).status_code in (200, 404)


async def test_query_external_is_read_scope(secured):
    body = {"source": "managed", "query": {}}
    assert (await secured.post("/v1/query/external", json=body)).status_code == 401
    r = await secured.post("/v1/query/external", json=body, headers=bearer(READ_TOKEN))
    assert r.status_code == 200


@pytest.mark.parametrize("path", ["/v1/healthz", "/metrics", "/openapi.json"])
async def test_health_metrics_and_openapi_stay_open(secured, path):
    assert (await secured.get(path)).status_code == 200


async def test_unknown_paths_are_refused_before_saying_they_do_not_exist(secured):
    assert (await secured.get("/v1/nothing-here")).status_code == 401
    assert (await secured.get("/v1/nothing-here", headers=bearer(READ_TOKEN))).status_code == 404


async def test_only_an_ingest_token_leaves_reads_open(start_gateway, make_event):
    async with start_gateway(gateway={"tokens": {"ingest": INGEST_TOKEN}}) as (client, _app):
        assert (await client.get("/v1/jobs")).status_code == 200
        body = encode_array([make_event()])
        assert (await client.post("/v1/ingest/managed", content=body)).status_code == 401


async def test_an_empty_token_means_no_auth(start_gateway, make_event):
    async with start_gateway(gateway={"tokens": {"ingest": "", "read": ""}}) as (client, _app):
        body = encode_array([make_event()])
        assert (await client.post("/v1/ingest/managed", content=body)).status_code == 200


async def test_tokens_never_reach_the_log(start_gateway, make_event):
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, force=True)
    try:
        tokens = {"ingest": INGEST_TOKEN, "read": READ_TOKEN}
        async with start_gateway(gateway={"tokens": tokens}) as (client, _app):
            body = encode_array([make_event()])
            await client.post("/v1/ingest/managed", content=body, headers=bearer(INGEST_TOKEN))
            await client.get("/v1/jobs", headers=bearer("a-wrong-token"))
            await client.get("/v1/jobs", headers=bearer(READ_TOKEN))
    finally:
        configure_logging("INFO", force=True)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [entry["status"] for entry in lines if entry["event"] == "request"] == [200, 403, 200]
    for secret in (INGEST_TOKEN, READ_TOKEN, "a-wrong-token"):
        assert secret not in text
