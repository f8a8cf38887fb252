"""What every wafermon host shares, so the gateway, sidecar and central behave alike.

- ``logs``: structlog JSON lines on stderr, configured once per process.
- ``metrics``: a per-app Prometheus registry with the request metrics every host exports.
- ``app``: the Starlette app of a host, its middleware stack assembled in one place.
- ``observe``: the middleware that gives each request an id, a log line, metrics and a span.
- ``auth``: bearer-token scopes (read / ingest) as ASGI middleware.
- ``errors``: JSON error bodies, for our own errors and Starlette's alike.
- ``limits``: reading a request body without ever holding more than the limit.
- ``tracing``: optional OpenTelemetry spans (the ``otel`` extra).
- ``serve``: Hypercorn with TLS and a SIGTERM-driven graceful shutdown.
- ``cli``: the ``wafermon <host>`` command builder (config, ``--check``, serve, exit codes).
- ``settings``: the ``listen`` / ``tls`` / ``tracing`` settings and validators of host sections.
- ``openapi``: the event schema, error bodies and open endpoints of every OpenAPI document.
"""
