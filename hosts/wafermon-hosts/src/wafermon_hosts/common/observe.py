"""One middleware that makes every request observable: id, log line, metrics and a span.

Doing all four in one place keeps their labels identical (the same route template in the log
line, the metric and the span name) and costs one wrapper around ``send`` per request.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response
from .logs import get_logger, log_request
from .metrics import UNMATCHED_ROUTE, HostMetrics
from .tracing import Tracing, trace_id

log = get_logger("wafermon_hosts.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestObserver:
    """ASGI middleware: X-Request-ID, a JSON log line, request metrics, an optional span."""

    def __init__(self, app: ASGIApp, *, metrics: HostMetrics, tracing: Tracing | None) -> None:
        self.app = app
        self.metrics = metrics
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode())
        root_path = scope.get("root_path", "")
        started = time.perf_counter()
        status = 500  # unless the app answers
        started_response = False
        error = None

        async def send_observed(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                message["headers"] = [*message.get("headers", ()), id_header]
                if self.tracing is not None:
                    carrier: dict[str, str] = {}
                    self.tracing.inject(carrier)
                    headers = MutableHeaders(scope=message)
                    for name, value in carrier.items():
                        headers[name] = value
            await send(message)

        with self._span(scope) as span:
            try:
                await self.app(scope, receive, send_observed)
            except Exception as exc:
                error = exc
                # A bug: the traceback goes to the log under the request id, the client gets a
                # JSON 500 carrying that id (unless the answer had begun: then it is cut).
                log.error(
                    "unhandled error",
                    method=scope["method"],
                    path=scope["path"],
                    request_id=request_id,
                    exc_info=exc,
                )
                if started_response:
                    raise
                answer = error_response(500, "internal error; see the server log")
                await answer(scope, receive, send_observed)
            finally:
                seconds = time.perf_counter() - started
                route = route_template(scope, root_path)
                self.metrics.observe_request(route, scope["method"], status, seconds)
                fields: dict[str, Any] = {
                    "method": scope["method"],
                    "path": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "request_id": request_id,
                }
                if span is not None and self.tracing is not None:
                    self.tracing.finish(span, scope["method"], route, status, error)
                    fields["trace_id"] = trace_id(span)
                log_request(fields)

    def _span(self, scope: Scope) -> contextlib.AbstractContextManager[Any]:
        """The request's server span when tracing is on, else a context of None."""
        if self.tracing is None:
            return _NO_SPAN
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        return self.tracing.server_span(scope["method"], headers)


_NO_SPAN = contextlib.nullcontext()


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-ID when it is short and plain, else a fresh one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return f"{_id_prefix}{next(_id_counter):016x}"


def _new_id_prefix() -> None:
    """A random half for this process's request ids (a new one in a forked child): ids stay
    unique across processes and restarts, and each costs a counter step, not a syscall."""
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = os.urandom(8).hex(), itertools.count()


_id_prefix, _id_counter = "", itertools.count()
_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)


@functools.lru_cache(maxsize=1024)  # route paths: a fixed set, matched on every request
def plain_template(path: str) -> str:
    """A Starlette route path without convertors: ``/v1/jobs/{id:path}`` -> ``/v1/jobs/{id}``."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's path template (``/v1/jobs/{id}``), never the raw path."""
    route = scope.get("route")
    if route is None:  # refused before routing (auth): find the route it was meant for
        app = scope.get("app")
        for candidate in getattr(app, "routes", ()):
            if candidate.matches(scope)[0] == Match.FULL:
                route = candidate
                break
        else:
            return UNMATCHED_ROUTE
    if isinstance(route, Mount):  # matched a mount but nothing inside it
        return f"{route.path}/{{path}}"
    prefix = scope.get("root_path", "")[len(root_path) :]
    return prefix + plain_template(getattr(route, "path", UNMATCHED_ROUTE))
