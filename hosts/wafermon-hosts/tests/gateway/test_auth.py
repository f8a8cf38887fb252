"""Bearer tokens: the ingest scope, the read scope, the open paths, and tokens never logged.

test_security.py holds the table over every route of every host; these are the gateway's
details (challenges, fail-closed defaults, empty tokens).
"""

from __future__ import annotations

import io
import json

import pytest

from wafermon import ConfigError, encode_array
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
async def test_read_endpoints_take_the_read_token_only(secured, path):
    assert (await secured.get(path)).status_code == 401
    assert (await secured.get(path, headers=bearer("wrong"))).status_code == 403
    assert (await secured.get(path, headers={"Authorization": "Basic abc"})).status_code == 401
    # Scopes are not implied: the ingest token a sidecar holds cannot read the site's data.
    assert (await secured.get(path, headers=bearer(INGEST_TOKEN))).status_code == 403
    assert (await secured.get(path, headers=bearer(READ_TOKEN))).status_code in (200, 404)


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


async def test_once_any_token_is_set_a_scope_without_one_is_closed(start_gateway, make_event):
    """Fail closed: configuring only the ingest token does not leave reads open to all."""
    async with start_gateway(gateway={"tokens": {"ingest": INGEST_TOKEN}}) as (client, _app):
        assert (await client.get("/v1/jobs")).status_code == 401
        assert (await client.get("/v1/jobs", headers=bearer(INGEST_TOKEN))).status_code == 403
        body = encode_array([make_event()])
        assert (await client.post("/v1/ingest/managed", content=body)).status_code == 401
        r = await client.post("/v1/ingest/managed", content=body, headers=bearer(INGEST_TOKEN))
        assert r.status_code == 200


async def test_insecure_opens_only_the_scopes_without_a_token(start_gateway, make_event):
    gateway = {"tokens": {"ingest": INGEST_TOKEN}, "insecure": True}
    async with start_gateway(gateway=gateway) as (client, _app):
        assert (await client.get("/v1/jobs")).status_code == 200
        body = encode_array([make_event()])
        assert (await client.post("/v1/ingest/managed", content=body)).status_code == 401
        metrics = (await client.get("/metrics")).text
        assert "wafermon_insecure 1.0" in metrics
        assert 'wafermon_auth_open_scope{scope="read"} 1.0' in metrics


@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_an_empty_or_blank_token_is_a_config_error_naming_the_key(build_app, value):
    with pytest.raises(ConfigError) as info:
        build_app(gateway={"tokens": {"ingest": "fine", "read": ["ok", value]}})
    (problem,) = info.value.problems
    assert problem.path == "gateway.tokens.read[1]"
    assert "must not be empty or whitespace" in problem.message


def test_a_token_file_that_is_empty_is_a_config_error(build_app, tmp_path):
    (tmp_path / "read.token").write_text("\n")
    with pytest.raises(ConfigError) as info:
        build_app(gateway={"tokens": {"read": {"file": str(tmp_path / "read.token")}}})
    (problem,) = info.value.problems
    assert problem.path == "gateway.tokens.read"
    assert "is empty" in problem.message


async def test_two_tokens_are_valid_at_once_while_rotating(start_gateway, tmp_path):
    (tmp_path / "new.token").write_text("read-new-token\n")
    tokens = {"read": [READ_TOKEN, {"file": str(tmp_path / "new.token")}]}
    async with start_gateway(gateway={"tokens": tokens}) as (client, _app):
        for token in (READ_TOKEN, "read-new-token"):
            assert (await client.get("/v1/jobs", headers=bearer(token))).status_code == 200
        assert (await client.get("/v1/jobs", headers=bearer("read-new"))).status_code == 403


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


async def test_a_token_file_is_read_again_when_it_changes(start_gateway, tmp_path, monkeypatch):
    """Rotation without a restart: add the new token as a line, move clients, drop the old."""
    from wafermon_hosts.common import auth

    monkeypatch.setattr(auth, "RELOAD_S", 0.0)
    tokens = tmp_path / "read.tokens"
    tokens.write_text("read-old-token\n")
    async with start_gateway(gateway={"tokens": {"read": {"file": str(tokens)}}}) as (client, _):

        async def status(token: str) -> int:
            return (await client.get("/v1/jobs", headers=bearer(token))).status_code

        assert (await status("read-old-token"), await status("read-new-token")) == (200, 403)
        tokens.write_text("read-old-token\nread-new-token\n")  # both valid while clients move
        assert (await status("read-old-token"), await status("read-new-token")) == (200, 200)
        tokens.write_text("read-new-token\n")
        assert (await status("read-old-token"), await status("read-new-token")) == (403, 200)
        tokens.write_text("")  # a botched edit: the previous tokens stay, nothing opens
        assert (await status("read-new-token"), (await client.get("/v1/jobs")).status_code) == (
            200,
            401,
        )
        tokens.unlink()
        assert await status("read-new-token") == 200
