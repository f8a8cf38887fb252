"""/openapi.json describes every route, and fuzzing the API from it finds no server error."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml
from starlette.routing import Route

from tests.helpers.gateway import FUZZ_TOKENS
from tests.helpers.openapi import fuzz_schema, fuzz_test, stop_fuzz_apps
from wafermon import hookimpl
from wafermon.config import load_config
from wafermon_hosts.common.openapi import json_content, operation, undocumented
from wafermon_hosts.gateway import create_app
from wafermon_hosts.gateway.app import load_gateway


def described(doc) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}


def served_routes(app) -> set[tuple[str, str]]:
    return {
        (re.sub(r":\w+}", "}", route.path), method)  # OpenAPI templates carry no converters
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods - {"HEAD"}
    }


async def test_every_route_is_described_and_nothing_else(start_gateway):
    async with start_gateway() as (client, app):
        doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert described(doc) == served_routes(app)
    assert all(isinstance(r, Route) for r in app.routes)  # no mounts hiding routes
    assert undocumented(doc) == [], "declare these handlers' docs with @operation"


def test_a_route_without_a_declaration_is_marked(build_app):
    """What test_every_route_is_described_and_nothing_else refuses: a handler without docs."""
    from wafermon_hosts.gateway.openapi import document

    async def bare(_request):
        return None

    doc = document([Route("/v1/bare", bare)])
    assert undocumented(doc) == ["GET /v1/bare"]


async def test_plugin_routes_are_described_too(start_gateway, plugins):
    from starlette.responses import PlainTextResponse

    class Extra:
        @hookimpl
        def register_routes(self, host):
            if host == "gateway":
                return [Route("/v1/x/extra/{n:int}", lambda r: PlainTextResponse("hi"))]
            return None

    plugins.register(Extra(), "extra")
    async with start_gateway(gateway={"tokens": {"read": "r"}}) as (client, app):
        doc = (await client.get("/openapi.json")).json()
        assert (await client.get("/v1/x/extra/3")).status_code == 401  # read scope applies
        ok = await client.get("/v1/x/extra/3", headers={"Authorization": "Bearer r"})
        assert ok.text == "hi"
    assert ("/v1/x/extra/{n}", "GET") in described(doc)
    assert {(re.sub(r":\w+}", "}", p), m) for p, m in served_routes(app)} == described(doc)
    extra = doc["paths"]["/v1/x/extra/{n}"]["get"]
    assert extra["summary"].startswith("Added by a plugin")
    assert extra["security"] == [{"bearer": []}]
    assert extra["x-wafermon-scope"] == "read"


async def test_a_plugin_route_can_declare_its_docs(start_gateway, plugins):
    from starlette.responses import PlainTextResponse

    @operation("extraHello", "Say hello.", {"200": json_content({"type": "string"}, "Hi.")})
    async def hello(_request):
        return PlainTextResponse("hi")

    class Extra:
        @hookimpl
        def register_routes(self, host):
            return [Route("/v1/x/extra/hello", hello)]

    plugins.register(Extra(), "extra")
    async with start_gateway() as (client, _app):
        doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/x/extra/hello"]["get"]
    assert (op["operationId"], op["summary"]) == ("extraHello", "Say hello.")
    assert set(op["responses"]) == {"200", "401", "403"}  # the read scope's answers added


async def test_plugin_mounts_are_described_with_their_routes(start_gateway, plugins):
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount

    async def bare_asgi(scope, receive, send):
        await PlainTextResponse("bare")(scope, receive, send)

    class Mounts:
        @hookimpl
        def register_routes(self, host):
            return [
                Mount("/v1/x/tools", routes=[Route("/ping", lambda r: PlainTextResponse("pong"))]),
                Mount("/v1/x/app", app=bare_asgi),
            ]

    plugins.register(Mounts(), "mounts")
    async with start_gateway() as (client, _app):
        doc = (await client.get("/openapi.json")).json()
        assert (await client.get("/v1/x/tools/ping")).text == "pong"
        assert (await client.get("/v1/x/app/anything")).text == "bare"
    assert {("/v1/x/tools/ping", "GET"), ("/v1/x/app/{path}", "GET")} <= described(doc)


def test_every_operation_documents_its_responses_and_auth(build_app):
    doc = build_app().state.openapi
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            assert "security" in op, (path, method)
            assert op.get("summary"), (path, method)
    open_ops = {
        p for p, ops in doc["paths"].items() if any(op["security"] == [] for op in ops.values())
    }
    assert open_ops == {"/v1/healthz", "/metrics", "/openapi.json"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if op["security"]:
                assert {"401", "403"} <= set(op["responses"]), (path, method)
    ingest = doc["paths"]["/v1/ingest/managed"]["post"]
    assert ingest["x-wafermon-scope"] == "ingest"
    assert "Retry-After" in ingest["responses"]["503"]["headers"]
    # One path, two scopes: the document follows the method (as the token middleware does).
    silences = doc["paths"]["/v1/silences"]
    assert (silences["get"]["x-wafermon-scope"], silences["post"]["x-wafermon-scope"]) == (
        "read",
        "admin",
    )


# -- fuzzing ------------------------------------------------------------------------------------


def fuzz_app():
    """The gateway (SQLite store, a filesystem source, a failing source) in a temporary folder
    (built at import: ``tests.helpers.openapi.fuzz_schema``)."""
    import wafermon_backend_filesystem.plugin
    import wafermon_backend_sql.plugin
    from tests.helpers.gateway import TestComponents
    from wafermon.plugins import Plugins

    root = Path(tempfile.mkdtemp(prefix="wafermon-gw-fuzz-"))
    config = {
        "site_id": "fab1",
        "gateway": {
            "source_timeout": "1s",
            "max_body_bytes": "256KiB",
            "tokens": FUZZ_TOKENS,
            "alerting": {"enabled": True},
        },
        "backends": [
            {
                "name": "managed",
                "type": "sql",
                "config": {"url": f"sqlite+aiosqlite:///{root}/f.db"},
            }
        ],
        "sources": [
            {"name": "archive", "type": "filesystem", "config": {"root": str(root / "events")}},
            {"name": "broken", "type": "failing"},
        ],
    }
    (root / "site.yaml").write_text(yaml.safe_dump(config))
    plugins = Plugins()
    plugins.register(wafermon_backend_sql.plugin, "sql")
    plugins.register(wafermon_backend_filesystem.plugin, "filesystem")
    plugins.register(TestComponents(), "test-components")
    return create_app(load_gateway(load_config(root / "site.yaml"), plugins)), root


FUZZ_APP, FUZZ_ROOT = fuzz_app()
# The stream never ends by itself (it waits for events); it has its own tests.
schema = fuzz_schema(FUZZ_APP, exclude_path="/v1/stream")
stop_fuzz_app = stop_fuzz_apps(FUZZ_ROOT)
test_fuzzed_requests_never_get_a_server_error = fuzz_test(schema, max_examples=30)
