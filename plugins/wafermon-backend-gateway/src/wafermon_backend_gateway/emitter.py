"""GatewayEmitter: posts batches to ``POST /v1/ingest/managed`` and reads the per-event verdict.

How answers map to the emitter contract:
- 200: events the gateway *rejected* are a PermanentError naming them (the rest were stored);
  accepted and duplicate events are delivered (a duplicate is an earlier delivery of ours).
- 413 / 422 (body or batch too large): the batch is split in halves and each half sent again,
  down to single events; a single event still too large is rejected permanently.
- 401 / 403: retryable, not permanent. A wrong token is an operator's mistake to fix; the
  events must stay in the spool until then rather than go to the dead-letter file.
- 400 / 415: permanent for the whole batch (the gateway cannot read what we send).
- 5xx, 429, connection errors, timeouts: retryable; the router backs off and tries again.

Parallel parts: a batch of at least ``2 * MIN_PART`` events goes out as ``parallel_requests``
requests at once (cut between lines, no decoding), so the gateway reads and checks one part
while the database stores another; the router hands a backend one batch at a time, which
otherwise leaves the gateway's process and the database taking turns. The batch is delivered
when every part is: a part that failed with a retryable error makes the whole batch retried
(the parts already stored come back as duplicates, which is success); a part refused as a
whole (400/415) is a PermanentError naming that part's events only.

Tracing: when OpenTelemetry is installed and a span is current (the sidecar makes one per
delivery when its tracing is on), each request carries that span's W3C ``traceparent``, so
the gateway's span joins the trace. Without OpenTelemetry nothing is added.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence

import attrs
import httpx

from wafermon import (
    Emitter,
    Event,
    EventBatch,
    Health,
    PermanentError,
    RetryableError,
    Seconds,
    Secret,
)

INGEST_PATH = "/v1/ingest/managed"
#: Fewest events worth a request of their own when a batch is sent in parallel parts.
MIN_PART = 100
log = logging.getLogger(__name__)

try:
    from opentelemetry.propagate import inject as _inject_trace_context
except ImportError:  # tracing is optional; the hosts' ``otel`` extra installs it

    def _inject_trace_context(carrier: dict[str, str]) -> None:
        pass


@attrs.frozen
class GatewaySettings:
    """``config:`` of a ``type: gateway`` backend."""

    url: str
    token: Secret | None = None
    timeout: Seconds = Seconds(30.0)
    verify_tls: bool = True  # false: warned at start (anyone in between reads the token)
    ca_file: str | None = None  # a CA bundle for a gateway with a private certificate
    client_cert: str | None = None  # this sidecar's certificate, for a gateway asking mTLS
    client_key: str | None = None
    parallel_requests: int = attrs.field(default=2, validator=attrs.validators.ge(1))


class GatewayEmitter(Emitter):
    Settings = GatewaySettings
    settings: GatewaySettings

    def __init__(self, name: str, settings: GatewaySettings) -> None:
        super().__init__(name, settings)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        headers = {"Content-Type": "application/x-ndjson"}
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token.reveal()}"
        self._client = httpx.AsyncClient(
            base_url=self.settings.url.rstrip("/"),
            headers=headers,
            verify=self._verify(),
            timeout=self.settings.timeout,
        )

    def _verify(self) -> ssl.SSLContext | bool:
        """Checks the gateway's certificate (``ca_file``) and presents ours (mutual TLS)."""
        s = self.settings
        if not s.verify_tls:
            log.warning(
                "backend %r: verify_tls is false: the gateway's certificate is not checked",
                self.name,
            )
            return False
        if s.ca_file is None and s.client_cert is None:
            return True
        context = ssl.create_default_context(cafile=s.ca_file)
        if s.client_cert is not None:
            context.load_cert_chain(s.client_cert, s.client_key)
        return context

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def health(self) -> Health:
        try:
            response = await self._http.get("/v1/healthz", timeout=5.0)
        except httpx.HTTPError as exc:
            return Health(False, f"{self.settings.url} unreachable: {exc}")
        return Health(response.status_code == 200, f"gateway answered {response.status_code}")

    async def emit(self, batch: Sequence[Event]) -> None:
        # The spooled bytes go out as they are: a sidecar forwards without decoding.
        parts = _parts(EventBatch.from_events(batch), self.settings.parallel_requests)
        if len(parts) == 1:
            rejected = await self._post(parts[0])
        else:
            rejected = await self._post_parts(parts)
        if rejected:
            ids = [event_id for event_id, _ in rejected]
            reasons = "; ".join(f"{event_id}: {why}" for event_id, why in rejected[:5])
            raise PermanentError(f"gateway rejected {len(ids)} event(s): {reasons}", ids)

    async def _post_parts(self, parts: list[EventBatch]) -> list[tuple[str, str]]:
        """Every part at once; see the module's docstring for how failures combine."""
        outcomes = await asyncio.gather(*(self._post(p) for p in parts), return_exceptions=True)
        rejected: list[tuple[str, str]] = []
        refused: PermanentError | None = None
        for part, outcome in zip(parts, outcomes, strict=True):
            if isinstance(outcome, PermanentError):
                refused = outcome
                rejected += [(str(e.event_id), str(outcome)) for e in part]
            elif isinstance(outcome, BaseException):
                raise outcome  # retryable (or unexpected): the whole batch again
            else:
                rejected += outcome
        if refused is not None:
            ids = [event_id for event_id, _ in rejected]
            raise PermanentError(f"{refused} ({len(ids)} event(s))", ids)
        return rejected

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RetryableError(f"backend {self.name!r} is not started")
        return self._client

    async def _post(self, events: EventBatch) -> list[tuple[str, str]]:
        """Send events; returns (event_id, reason) of each event the gateway rejected."""
        if not events:
            return []
        try:
            headers: dict[str, str] = {}
            _inject_trace_context(headers)
            response = await self._http.post(INGEST_PATH, content=events.ndjson, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableError(f"{self.settings.url}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 200:
            return [
                (result["event_id"], _reason(result))
                for result in response.json()["results"]
                if result["status"] == "rejected"
            ]
        if status in (413, 422):
            if len(events) == 1:
                return [(str(events[0].event_id), f"gateway answered {status}: too large")]
            first, second = events.split()
            return await self._post(first) + await self._post(second)
        detail = response.text[:300]
        if status in (400, 415):
            raise PermanentError(f"gateway answered {status}: {detail}")
        raise RetryableError(f"gateway answered {status}: {detail}")


def _parts(batch: EventBatch, wanted: int) -> list[EventBatch]:
    """``batch`` cut into up to ``wanted`` parts of at least MIN_PART events (halving the
    largest part each time)."""
    parts = [batch]
    while len(parts) < wanted:
        k = max(range(len(parts)), key=lambda i: len(parts[i]))
        if len(parts[k]) < 2 * MIN_PART:
            break
        parts[k : k + 1] = parts[k].split()
    return parts


def _reason(result: dict) -> str:
    return "; ".join(f"{e['path']}: {e['message']}" for e in result.get("errors", [])) or "rejected"
