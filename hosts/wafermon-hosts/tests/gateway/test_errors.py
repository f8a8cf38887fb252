"""A bug in a handler: the client gets a JSON 500, the log gets the traceback."""

from __future__ import annotations

import io
import json

import httpx

from tests.helpers.gateway import Buggy
from wafermon_hosts.common.logs import configure_logging


async def test_unhandled_errors_answer_json_500_and_log_the_traceback(build_app, plugins):
    plugins.register(Buggy(), "buggy")
    app = build_app()
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, force=True)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                r = await client.get("/v1/x/buggy/boom", headers={"X-Request-ID": "req-42"})
    finally:
        configure_logging("INFO", force=True)
    assert r.status_code == 500
    assert r.json() == {"error": "internal error; see the server log"}
    assert r.headers["x-request-id"] == "req-42"
    logs = [json.loads(line) for line in stream.getvalue().splitlines()]
    (error,) = [line for line in logs if line["event"] == "unhandled error"]
    assert error["level"] == "error"
    assert error["request_id"] == "req-42"
    assert "ZeroDivisionError: the plugin divided by zero" in error["exception"]
    assert "Traceback" in error["exception"]
    (request,) = [line for line in logs if line["event"] == "request"]
    assert (request["path"], request["status"]) == ("/v1/x/buggy/boom", 500)
