"""Optional OpenTelemetry tracing: a server span per request that continues the caller's trace."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.helpers.gateway import Buggy

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_a_request_with_traceparent_continues_that_trace(start_gateway):
    exporter = InMemorySpanExporter()
    gateway = {"tracing": {"enabled": True}}
    async with start_gateway(gateway=gateway, span_exporter=exporter) as (client, _app):
        r = await client.get("/v1/jobs/lot-9", headers={"traceparent": TRACEPARENT})
        assert r.status_code == 404
        # The answer carries the server span's context, in the same trace.
        version, trace_id, span_id, _flags = r.headers["traceparent"].split("-")
        assert (version, trace_id) == ("00", TRACE_ID)
        await client.get("/v1/healthz")  # no traceparent: a new trace
    spans = exporter.get_finished_spans()
    first = spans[0]
    assert first.name == "GET /v1/jobs/{id}"
    assert first.kind == SpanKind.SERVER
    assert format(first.context.trace_id, "032x") == TRACE_ID
    assert format(first.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert format(first.context.span_id, "016x") == span_id
    assert first.attributes["http.route"] == "/v1/jobs/{id}"
    assert first.attributes["http.response.status_code"] == 404
    assert format(spans[1].context.trace_id, "032x") != TRACE_ID
    assert spans[1].parent is None


async def test_tracing_off_adds_no_header(client):
    r = await client.get("/v1/healthz", headers={"traceparent": TRACEPARENT})
    assert "traceparent" not in r.headers


def test_the_gateway_runs_without_opentelemetry_installed(tmp_path):
    """With tracing off, nothing imports opentelemetry (the ``otel`` extra is optional)."""
    (tmp_path / "site.yaml").write_text(
        textwrap.dedent(f"""\
            site_id: fab1
            backends:
              - {{name: managed, type: sql, config: {{url: "sqlite+aiosqlite:///{tmp_path}/w.db"}}}}
        """)
    )
    script = textwrap.dedent(f"""\
        import sys
        sys.modules["opentelemetry"] = None  # any import of it now fails
        import wafermon_backend_sql.plugin
        from wafermon.config import load_config
        from wafermon.plugins import Plugins
        from wafermon_hosts.gateway.app import create_app, load_gateway
        plugins = Plugins()
        plugins.register(wafermon_backend_sql.plugin, "sql")
        app = create_app(load_gateway(load_config({str(tmp_path / "site.yaml")!r}), plugins))
        print("ok", app.state.gateway.tracing)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok None"


def test_tracing_on_without_opentelemetry_is_a_clear_error(tmp_path):
    script = textwrap.dedent("""\
        import sys
        sys.modules["opentelemetry"] = None
        from wafermon_hosts.common.tracing import Tracing, TracingUnavailable
        try:
            Tracing.create("gw")
        except TracingUnavailable as exc:
            print(exc)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert "install wafermon-hosts[otel]" in result.stdout, result.stderr


async def test_a_server_error_marks_the_span(build_app, plugins):
    from opentelemetry.trace import StatusCode

    plugins.register(Buggy(), "buggy")
    exporter = InMemorySpanExporter()
    app = build_app(gateway={"tracing": {"enabled": True}}, span_exporter=exporter)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            assert (await client.get("/v1/x/buggy/boom")).status_code == 500
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
