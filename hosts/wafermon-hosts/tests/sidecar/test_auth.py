"""The SDK -> sidecar token: both ingest paths need the ingest scope, plugin routes read."""

from __future__ import annotations

import io
import json

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from wafermon import encode_array, hookimpl
from wafermon_hosts.common.logs import configure_logging

TOKEN = "sdk-s3cret-token"
READ_TOKEN = "ops-s3cret-token"
PATHS = ["/v1/ingest/events", "/v1/ingest/events:batch"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Extra:
    @hookimpl
    def register_routes(self, host):
        if host == "sidecar":
            return [Route("/v1/x/extra/ping", lambda r: PlainTextResponse("pong"))]
        return None


@pytest.fixture
async def secured(start_sidecar, sc_plugins):
    sc_plugins.register(Extra(), "extra")
    tokens = {"ingest": TOKEN, "read": READ_TOKEN}
    async with start_sidecar(sidecar={"tokens": tokens}) as (client, _app):
        yield client


@pytest.mark.parametrize("path", PATHS)
async def test_ingest_needs_the_token_when_one_is_set(secured, make_event, path):
    body = encode_array([make_event()])
    r = await secured.post(path, content=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "ingest" in r.json()["error"]
    r = await secured.post(path, content=body, headers=bearer("wrong"))
    assert r.status_code == 403
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    r = await secured.post(path, content=body, headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401
    assert (await secured.post(path, content=body, headers=bearer(TOKEN))).status_code == 202


async def test_without_any_token_a_loopback_sidecar_is_open(sc_client, make_event):
    """The zero-config developer default (``wafermon up``): nothing to set on 127.0.0.1."""
    r = await sc_client.post(PATHS[0], content=encode_array([make_event()]))
    assert r.status_code == 202


@pytest.mark.parametrize("path", ["/v1/healthz", "/metrics", "/openapi.json"])
async def test_health_metrics_and_openapi_stay_open(secured, path):
    assert (await secured.get(path)).status_code == 200


async def test_plugin_routes_need_the_read_token(secured):
    assert (await secured.get("/v1/x/extra/ping")).status_code == 401
    assert (await secured.get("/v1/x/extra/ping", headers=bearer(TOKEN))).status_code == 403
    r = await secured.get("/v1/x/extra/ping", headers=bearer(READ_TOKEN))
    assert (r.status_code, r.text) == (200, "pong")


async def test_the_token_is_never_logged(start_sidecar, make_event):
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, force=True)
    try:
        async with start_sidecar(sidecar={"tokens": {"ingest": TOKEN}}) as (client, app):
            await client.post(PATHS[0], content=encode_array([make_event()]), headers=bearer(TOKEN))
            await client.post(PATHS[0], content=b"[]", headers=bearer("not-" + TOKEN))
            assert TOKEN not in repr(app.state.sidecar.settings)
    finally:
        configure_logging("INFO", force=True)
    text = stream.getvalue()
    assert [json.loads(line)["status"] for line in text.splitlines() if '"request"' in line] == [
        202,
        403,
    ]
    assert TOKEN not in text
