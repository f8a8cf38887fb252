"""Where the shipper delivers batches: the sidecar over HTTP, or backend plugins in-process.

A sink takes a batch of NDJSON lines and either returns (the batch is stored; the events it
lists were refused for good, with the reason) or raises ``Unavailable`` (nothing can be
assumed stored; the shipper retries, then spools). Sinks are used from the shipper thread
only, and made in it: an HTTP connection pool or an event loop never crosses a fork.

The sidecar's answers: 202 with one result per event (``rejected`` ones are refused for good);
400 when nothing in the body was valid; 413/422 (body or batch too large) split the batch in
halves down to single events; 503 with Retry-After (its spool is full or it is stopping),
5xx, 429, 401/403 (a token problem for an operator to fix: keep the events), 404 (wrong URL)
and network errors are ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from wafermon import Emitter, PermanentError
from wafermon.wire import read_batch

from .config import Settings

INGEST_PATH = "/v1/ingest/events"
RETRYABLE_STATUS = frozenset({401, 403, 404, 408, 425, 429})
SPLIT_STATUS = frozenset({413, 422})


class Unavailable(Exception):
    """The sink could not take the batch now; ``retry_after`` is the server's hint, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


#: (index in the batch, why) for each event a sink refused for good.
Refusals = list[tuple[int, str]]


class Sink:
    name: str

    def send(self, lines: Sequence[bytes]) -> Refusals:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called from the shipper thread."""


class SidecarSink(Sink):
    """POST /v1/ingest/events with NDJSON bodies."""

    name = "sidecar"

    def __init__(self, settings: Settings, sdk_version: str) -> None:
        headers = {
            "Content-Type": "application/x-ndjson",
            "User-Agent": f"wafermon-sdk-python/{sdk_version}",
        }
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token.reveal()}"
        self.url = settings.sidecar_url + INGEST_PATH
        self.client = httpx.Client(
            headers=headers, timeout=settings.timeout, verify=settings.verify_tls
        )
        self._tracer = _tracer() if settings.tracing else None

    def send(self, lines: Sequence[bytes]) -> Refusals:
        if self._tracer is None:
            return self._send(lines, None)
        from opentelemetry.propagate import inject
        from opentelemetry.trace import SpanKind

        with self._tracer.start_as_current_span(
            f"POST {INGEST_PATH}", kind=SpanKind.CLIENT, attributes={"wafermon.events": len(lines)}
        ):
            headers: dict[str, str] = {}
            inject(headers)
            return self._send(lines, headers)

    def _send(self, lines: Sequence[bytes], headers: dict[str, str] | None) -> Refusals:
        try:
            response = self.client.post(self.url, content=b"".join(lines), headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"sidecar {self.url} unreachable: {type(exc).__name__}: {exc}"
            ) from None
        status = response.status_code
        if status == 202 or (status == 400 and _has_results(response)):
            return _refusals(response)
        if status in SPLIT_STATUS:
            if len(lines) == 1:
                return [(0, f"the sidecar answered {status}: {_reason(response)}")]
            half = len(lines) // 2
            first = self.send(lines[:half])
            return first + [(i + half, why) for i, why in self.send(lines[half:])]
        if status >= 500 or status in RETRYABLE_STATUS:
            raise Unavailable(
                f"sidecar answered {status}: {_reason(response)}", _retry_after(response)
            )
        why = f"the sidecar answered {status}: {_reason(response)}"
        return [(i, why) for i in range(len(lines))]

    def close(self) -> None:
        self.client.close()


def _tracer() -> Any:  # an opentelemetry Tracer; the package is optional
    """The application's tracer provider's tracer: the SDK exports nothing by itself."""
    from opentelemetry import trace

    return trace.get_tracer("wafermon_sdk")


def _has_results(response: httpx.Response) -> bool:
    try:
        return isinstance(orjson.loads(response.content).get("results"), list)
    except (ValueError, AttributeError):
        return False


def _refusals(response: httpx.Response) -> Refusals:
    try:
        body = orjson.loads(response.content)
    except ValueError:
        return []
    if isinstance(body, dict) and body.get("rejected") == 0:
        return []  # the usual answer: skip walking one result per event
    try:
        results = body["results"]
    except (KeyError, TypeError):
        return []
    out = []
    for result in results:
        if result.get("status") == "rejected":
            errors = "; ".join(f"{e['path']}: {e['message']}" for e in result.get("errors", []))
            out.append((result["index"], errors or "rejected"))
    return out


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:500] or response.reason_phrase
    except (ValueError, AttributeError):
        return response.text[:200] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


class DirectSink(Sink):
    """One backend plugin's emitter, run on the shipper thread's own event loop.

    The emitter is started on first use; a failed start counts as unavailable and is tried
    again before the next batch, as the sidecar does.
    """

    def __init__(self, emitter: Emitter, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.name = emitter.name
        self.emitter = emitter
        self.loop = loop
        self.timeout = timeout
        self.started = False

    def _run(self, coroutine_factory: Callable[[], object]) -> object:
        async def bounded() -> object:
            async with asyncio.timeout(self.timeout):
                return await coroutine_factory()

        return self.loop.run_until_complete(bounded())

    def send(self, lines: Sequence[bytes]) -> Refusals:
        # The hosts' fast reader; not the rest of wafermon.ingest: the SDK built these events
        # itself (unique ids) and a site's transform_events plugins run on the hosts only.
        read = read_batch(b"".join(lines))
        refused: Refusals = [(r.index, "; ".join(map(str, r.problems))) for r in read.rejected]
        if not read.events:
            return refused
        events = [w.to_event() for w in read.events]
        try:
            if not self.started:
                self._run(self.emitter.start)
                self.started = True
            self._run(lambda: self.emitter.emit(events))
        except PermanentError as exc:
            if exc.event_ids is None:
                return [(i, str(exc)) for i in range(len(lines))]
            bad = {str(e) for e in exc.event_ids}
            refused += [
                (index, str(exc))
                for index, event in zip(read.indexes, events, strict=True)
                if str(event.event_id) in bad
            ]
        except Exception as exc:  # noqa: BLE001 - RetryableError, timeouts, plugin bugs: retry
            if not self.started:
                self._close_quietly()
            raise Unavailable(f"backend {self.name!r}: {type(exc).__name__}: {exc}") from None
        return sorted(refused)

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):  # closing after a failure is best effort
            self._run(self.emitter.close)

    def close(self) -> None:
        if self.started:
            self.started = False
            self._close_quietly()


def refused_lines(lines: Sequence[bytes], refusals: Refusals) -> list[tuple[str | None, str]]:
    """(event_id, why) of the refused lines, for logs."""
    out = []
    for index, why in refusals:
        try:
            event_id = orjson.loads(lines[index]).get("event_id")
        except (orjson.JSONDecodeError, IndexError, AttributeError):
            event_id = None
        out.append((event_id, why))
    return out
