"""One W3C trace across every hop: SDK -> sidecar -> (spool) -> router -> gateway.

The SDK's span is read from an in-memory exporter in this process; the sidecar and gateway are
real processes exporting over OTLP/HTTP to a small receiver here, which decodes the protobuf
requests the way a collector would. The test follows parent span ids hop by hop.
"""

from __future__ import annotations

import gzip
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_helpers import finished_with, running_stack, wait_until

from wafermon_sdk import AppRef, Client, Monitored

APP = AppRef(name="traced-process", version="1.0")


class OtlpReceiver(ThreadingHTTPServer):
    """POST /v1/traces: keeps every span as {service, name, trace_id, span_id, parent_id}."""

    def __init__(self) -> None:
        self.spans: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), _OtlpHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _OtlpHandler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.spans.append(
                        {
                            "service": attributes.get("service.name", ""),
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_id": span.parent_span_id.hex(),
                        }
                    )
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def sdk_spans():
    """The application's tracer provider, as an instrumented program would set it up."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process; no other test sets one
    yield exporter
    exporter.clear()


def test_one_trace_runs_from_the_sdk_through_the_sidecar_to_the_gateway(
    tmp_path, monkeypatch, receiver, sdk_spans
):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # the hosts export within 0.1 s
    with running_stack(tmp_path, otlp_endpoint=receiver.endpoint) as stack:
        client = Client(sidecar_url=stack.sidecar_url, site_id="fab1", tracing=True)
        try:
            with Monitored(app=APP, business_key=f"lot-{uuid.uuid4()}", client=client) as job:
                pass
            assert client.flush(20), client.stats()
        finally:
            client.close()
        stack.wait_for_job(job.entity_id, finished_with(0))

        posts = [s for s in sdk_spans.get_finished_spans() if s.name == "POST /v1/ingest/events"]
        assert posts, [s.name for s in sdk_spans.get_finished_spans()]
        sdk_span = posts[-1].get_span_context()
        trace_id = format(sdk_span.trace_id, "032x")

        def hop(service: str, name: str, parent_id: str) -> dict[str, str] | None:
            return next(
                (
                    s
                    for s in receiver.spans
                    if (s["service"], s["name"], s["trace_id"], s["parent_id"])
                    == (service, name, trace_id, parent_id)
                ),
                None,
            )

        sidecar_in = wait_until(
            lambda: hop(
                "wafermon-sidecar", "POST /v1/ingest/events", format(sdk_span.span_id, "016x")
            ),
            what=f"the sidecar's span in trace {trace_id}: {receiver.spans}",
        )
        delivery = wait_until(
            lambda: hop("wafermon-sidecar", "deliver gw", sidecar_in["span_id"]),
            what=f"the sidecar's delivery span under {sidecar_in}: {receiver.spans}",
        )
        wait_until(
            lambda: hop("wafermon-gateway", "POST /v1/ingest/managed", delivery["span_id"]),
            what=f"the gateway's span under {delivery}: {receiver.spans}",
        )


def test_tracing_without_opentelemetry_installed_is_a_config_error(monkeypatch):
    import importlib.util

    from wafermon import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "opentelemetry" else real(name, *a),
    )
    monkeypatch.setenv("WAFERMON_TRACING", "true")
    with pytest.raises(ConfigError, match="WAFERMON_TRACING: needs OpenTelemetry"):
        Client()
