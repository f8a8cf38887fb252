"""Optional OpenTelemetry tracing: a server span per request, W3C ``traceparent`` in and out.

OpenTelemetry is imported only when tracing is switched on, so a host without the ``otel``
extra runs fine with tracing off. The host keeps its own TracerProvider instead of setting the
global one: two apps in a process (tests) each export their own spans. The incoming
``traceparent`` becomes the span's parent; the span's own context is made current while the
request runs (so instrumented clients in plugins propagate it) and sent back in the response's
``traceparent`` header so a caller can find the server span.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any


class TracingUnavailable(RuntimeError):
    """Tracing was asked for but the OpenTelemetry packages are not installed."""


class Tracing:
    """A tracer and the W3C propagator; built by ``Tracing.create``."""

    def __init__(self, provider: Any, propagator: Any) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("wafermon_hosts")
        self.propagator = propagator

    @classmethod
    def create(
        cls, service_name: str, *, otlp_endpoint: str | None = None, exporter: Any = None
    ) -> Tracing:
        """Spans go to ``exporter`` if given (tests), else to OTLP/HTTP at ``otlp_endpoint``.

        Without either, spans are still made (and ``traceparent`` propagated) but not exported.
        """
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError as exc:
            raise TracingUnavailable(
                f"tracing is enabled but OpenTelemetry is not installed ({exc.name} missing); "
                "install wafermon-hosts[otel] or set tracing.enabled: false"
            ) from None
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif otlp_endpoint:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError as exc:
                raise TracingUnavailable(
                    f"tracing.otlp_endpoint is set but the OTLP exporter is not installed "
                    f"({exc.name} missing); install wafermon-hosts[otel]"
                ) from None
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(otlp_endpoint)))
        return cls(provider, TraceContextTextMapPropagator())

    @contextlib.contextmanager
    def server_span(self, name: str, headers: dict[str, str]) -> Iterator[Any]:
        """A current SERVER span whose parent is the request's ``traceparent``, if any."""
        from opentelemetry.trace import SpanKind

        parent = self.propagator.extract(carrier=headers)
        with self.tracer.start_as_current_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            record_exception=False,  # ``finish`` records it, once
            set_status_on_exception=False,
        ) as span:
            yield span

    def finish(
        self, span: Any, method: str, route: str, status: int, error: BaseException | None
    ) -> None:
        """Name the span after the route and record the outcome (5xx and exceptions: ERROR)."""
        from opentelemetry.trace import Status, StatusCode

        span.update_name(f"{method} {route}")
        span.set_attribute("http.request.method", method)
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if error is not None:
            span.record_exception(error)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        """Write the current span's ``traceparent`` into ``carrier``."""
        self.propagator.inject(carrier)

    def carrier(self) -> dict[str, str]:
        """The current span's ``traceparent`` (and ``tracestate``), to keep for a later hop."""
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier)
        return carrier

    @contextlib.contextmanager
    def delivery_span(
        self, name: str, carriers: Sequence[Mapping[str, str]], attributes: Mapping[str, Any]
    ) -> Iterator[Any]:
        """A current span for work done later on behalf of earlier requests.

        Its parent is the first request's span, so a single-request delivery continues that
        request's trace; the other requests' spans are links. While it is current, outgoing
        requests that inject the current context (the gateway emitter does) carry its
        ``traceparent`` to the next hop.
        """
        from opentelemetry.trace import Link, SpanKind, get_current_span

        contexts = [self.propagator.extract(carrier=dict(c)) for c in carriers]
        spans = [get_current_span(ctx).get_span_context() for ctx in contexts]
        links = [Link(sc) for sc in spans[1:] if sc.is_valid]
        with self.tracer.start_as_current_span(
            name,
            context=contexts[0] if contexts else None,
            kind=SpanKind.PRODUCER,
            links=links,
            attributes=dict(attributes),
        ) as span:
            yield span

    def delivery_scope(
        self, backend: str, seqs: Sequence[int], carriers: Sequence[Mapping[str, str]]
    ) -> contextlib.AbstractContextManager[Any]:
        """The router's ``delivery_scope``: a span per delivery of spooled records to a backend,
        continuing the trace of the requests that brought them."""
        attributes = {
            "wafermon.backend": backend,
            "wafermon.spool.first_seq": seqs[0],
            "wafermon.spool.last_seq": seqs[-1],
        }
        return self.delivery_span(f"deliver {backend}", carriers, attributes)

    def shutdown(self) -> None:
        """Flush and stop exporting (called on host shutdown)."""
        self.provider.shutdown()


def trace_id(span: Any) -> str:
    """The span's trace id as the 32 hex digits ``traceparent`` carries."""
    return format(span.get_span_context().trace_id, "032x")
