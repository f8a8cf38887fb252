"""/openapi.json describes every sidecar route, and fuzzing the API from it finds no 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from starlette.routing import Route

from tests.helpers.gateway import FUZZ_TOKENS
from tests.helpers.openapi import fuzz_schema, fuzz_test, stop_fuzz_apps
from wafermon.config import load_config
from wafermon_hosts.common.openapi import undocumented
from wafermon_hosts.sidecar import create_app, load_sidecar


def described(doc) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}


def served_routes(app) -> set[tuple[str, str]]:
    return {
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods - {"HEAD"}
    }


async def test_every_route_is_described_and_nothing_else(start_sidecar):
    async with start_sidecar() as (client, app):
        doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert described(doc) == served_routes(app)
    assert all(isinstance(r, Route) for r in app.routes)
    assert undocumented(doc) == [], "declare these handlers' docs with @operation"
    assert "Event" in doc["components"]["schemas"]  # the core's event schema, embedded
    body = doc["paths"]["/v1/ingest/events"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["oneOf"][0] == {"$ref": "#/components/schemas/Event"}


def test_every_operation_documents_its_responses_and_auth(build_sidecar_app):
    doc = build_sidecar_app().state.openapi
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            assert "security" in op, (path, method)
            assert op.get("summary"), (path, method)
    ingest = doc["paths"]["/v1/ingest/events"]["post"]["responses"]
    assert set(ingest) == {"202", "400", "401", "403", "413", "415", "422", "503"}
    assert "Retry-After" in ingest["503"]["headers"]
    open_ops = {p for p, ops in doc["paths"].items() if next(iter(ops.values()))["security"] == []}
    assert open_ops == {"/v1/healthz", "/metrics", "/openapi.json"}


# -- fuzzing ------------------------------------------------------------------------------------


def fuzz_app():
    """A sidecar (a filesystem backend and one that is down) in a temporary folder (built at
    import: ``tests.helpers.openapi.fuzz_schema``)."""
    import wafermon_backend_filesystem.plugin
    from wafermon.plugins import Plugins

    root = Path(tempfile.mkdtemp(prefix="wafermon-sc-fuzz-"))
    config = {
        "site_id": "fab1",
        "sidecar": {
            "max_body_bytes": "256KiB",
            "spool": {"dir": str(root / "spool")},
            "drain_timeout": "100ms",
            "tokens": FUZZ_TOKENS,
        },
        "backends": [
            {"name": "archive", "type": "filesystem", "config": {"root": str(root / "events")}},
            {"name": "blocked", "type": "filesystem", "config": {"root": str(root / "file")}},
        ],
    }
    (root / "file").write_text("a regular file where a directory should be")
    (root / "site.yaml").write_text(yaml.safe_dump(config))
    plugins = Plugins()
    plugins.register(wafermon_backend_filesystem.plugin, "filesystem")
    return create_app(load_sidecar(load_config(root / "site.yaml"), plugins)), root


FUZZ_APP, FUZZ_ROOT = fuzz_app()
schema = fuzz_schema(FUZZ_APP)
stop_fuzz_app = stop_fuzz_apps(FUZZ_ROOT)
test_fuzzed_requests_never_get_a_server_error = fuzz_test(schema, max_examples=40)
