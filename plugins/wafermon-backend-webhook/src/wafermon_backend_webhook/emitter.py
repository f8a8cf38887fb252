"""WebhookEmitter: POSTs event batches as signed JSON, or chat messages about failures.

Answers and what they mean for the emitter contract:
- 2xx: delivered.
- 429, 408 and 5xx, refused connections, timeouts: tried again inside ``emit`` up to
  ``attempts`` times, waiting what the receiver's ``Retry-After`` asks (seconds or an HTTP
  date) or else an exponential backoff; a wait longer than ``max_retry_after``, or the last
  attempt failing, is a RetryableError, and the router's own backoff takes over.
- 413 (generic preset): the batch is split in halves down to single events.
- any other 4xx (and 3xx: redirects are not followed, a moved hook is a config error): a
  PermanentError whose message carries the receiver's answer, so the dead-letter file says
  why.

The generic body is built from the batch's NDJSON lines as the sidecar spooled them (no event
is decoded or encoded). Delivery is at-least-once: the body carries a ``batch_id`` derived from
those lines (the same on every retry) for receivers that deduplicate; chat messages already
posted are remembered (bounded) so a retried batch does not post them twice from this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import OrderedDict
from collections.abc import Sequence

import attrs
import httpx
import orjson

from wafermon import (
    Emitter,
    Event,
    FieldValueError,
    Kind,
    PermanentError,
    RetryableError,
    Seconds,
    Secret,
    decode_event,
    ndjson_of,
)

from .posting import HttpClientPart, Refused, post_once
from .presets import PRESETS
from .signing import signature_headers

BATCH_ID_HEADER = "X-Wafermon-Batch-Id"
SENT_MEMORY = 10_000  # chat messages remembered as posted (by their events' ids)
PRESET_NAMES = ("generic", *PRESETS)
BATCH_NAMESPACE = uuid.UUID("6f0a3c52-3b1e-4d0e-9a8e-5c1d2b7e9f40")  # for batch ids


def _check_preset(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in PRESET_NAMES:
        raise FieldValueError(attribute.name, f"must be one of {', '.join(PRESET_NAMES)}")


def _check_url(_inst: object, attribute: attrs.Attribute, value: Secret) -> None:
    if not value.reveal().startswith(("http://", "https://")):
        raise FieldValueError(attribute.name, "must be an http:// or https:// URL")


def _at_least(minimum: float):
    def check(_inst: object, attribute: attrs.Attribute, value: float) -> None:
        if value < minimum:
            raise FieldValueError(attribute.name, f"must be at least {minimum}, got {value}")

    return check


@attrs.frozen
class WebhookSettings:
    """``config:`` of a ``type: webhook`` backend. ``url`` is a secret: chat webhook URLs are
    bearer credentials, so it is masked in ``config show`` and never printed."""

    url: Secret = attrs.field(validator=_check_url)
    preset: str = attrs.field(default="generic", validator=_check_preset)
    secret: Secret | None = None  # HMAC-SHA256 signing key (signing.py); no signature if unset
    headers: dict[str, Secret] = attrs.field(factory=dict)  # e.g. an Authorization header
    timeout: Seconds = Seconds(10.0)
    attempts: int = attrs.field(default=3, validator=_at_least(1))
    backoff: Seconds = Seconds(0.5)  # first wait without a Retry-After; doubles per attempt
    max_retry_after: Seconds = Seconds(30.0)
    max_batch_events: int = attrs.field(default=500, validator=_at_least(1))
    digest_after: int = attrs.field(default=3, validator=_at_least(1))  # chat presets
    digest_lines: int = attrs.field(default=10, validator=_at_least(1))
    verify_tls: bool = True


class _Refused(Exception):
    """The receiver refused a request for good (non-retryable 4xx)."""


class _TooLarge(Exception):
    """413: the body is too large for the receiver."""


class WebhookEmitter(HttpClientPart, Emitter):
    Settings = WebhookSettings
    settings: WebhookSettings

    def __init__(self, name: str, settings: WebhookSettings) -> None:
        super().__init__(name, settings)
        self._client: httpx.AsyncClient | None = None
        self._sent: OrderedDict[tuple[uuid.UUID, ...], None] = OrderedDict()
        self._stats = {"requests": 0.0, "retries": 0.0, "refused": 0.0, "messages": 0.0}
        self._last_error = ""

    async def emit(self, batch: Sequence[Event]) -> None:
        if self.settings.preset == "generic":
            await self._emit_generic(batch)
        else:
            await self._emit_chat(list(batch))

    # -- generic: the batch itself, as JSON ---------------------------------------------------

    async def _emit_generic(self, batch: Sequence[Event]) -> None:
        # The batch's own NDJSON lines (what the sidecar spooled): no event is decoded or
        # encoded on the way unless the receiver refuses some, to name them.
        lines = [line for line in ndjson_of(batch).split(b"\n") if line.strip()]
        size = self.settings.max_batch_events
        refused: list[tuple[range, str]] = []
        for i in range(0, len(lines), size):
            refused += await self._post_lines(lines, range(i, min(i + size, len(lines))))
        if refused:
            indexes = [i for span, _ in refused for i in span]
            ids = (
                None
                if len(indexes) == len(lines)
                else [decode_event(lines[i]).event_id for i in indexes]
            )
            raise PermanentError(refused[0][1], ids)

    async def _post_lines(self, lines: list[bytes], span: range) -> list[tuple[range, str]]:
        """Post ``lines[span]`` as one body; returns the (span, reason) refused for good."""
        if not span:
            return []
        part = lines[span.start : span.stop]
        batch_id = _batch_id(part)
        head = orjson.dumps({"batch_id": batch_id, "count": len(part)})
        body = head[:-1] + b',"events":[' + b",".join(part) + b"]}"
        try:
            await self._post(body, {BATCH_ID_HEADER: batch_id})
        except _Refused as exc:
            return [(span, str(exc))]
        except _TooLarge:
            if len(span) == 1:
                return [(span, f"{self.name}: the webhook answered 413 for a single event")]
            half = span.start + len(span) // 2
            first = await self._post_lines(lines, range(span.start, half))
            return first + await self._post_lines(lines, range(half, span.stop))
        return []

    # -- chat presets: a message per failure, or a digest ------------------------------------

    async def _emit_chat(self, events: list[Event]) -> None:
        failed = [e for e in events if e.kind == Kind.FAILED]
        if not failed:
            return  # nothing a person needs to read; the batch is delivered
        one, digest = PRESETS[self.settings.preset]
        if len(failed) > self.settings.digest_after:
            messages = [(failed, digest(failed, self.settings.digest_lines))]
        else:
            messages = [([e], one(e)) for e in failed]
        refused: list[uuid.UUID] = []
        reason = ""
        for about, message in messages:
            key = tuple(e.event_id for e in about)
            if key in self._sent:
                continue  # posted before a retry of this batch; do not post it twice
            try:
                await self._post(orjson.dumps(message), {})
            except (_Refused, _TooLarge) as exc:
                refused += key
                reason = reason or str(exc) or f"{self.name}: the webhook answered 413"
                continue
            self._sent[key] = None
            self._stats["messages"] += 1
            if len(self._sent) > SENT_MEMORY:
                self._sent.popitem(last=False)
        if refused:
            raise PermanentError(reason, refused)

    # -- one request, retried ---------------------------------------------------------------

    async def _post(self, body: bytes, extra: dict[str, str]) -> None:
        if self._client is None:
            raise RetryableError(f"backend {self.name!r} is not started")
        settings = self.settings
        for attempt in range(1, settings.attempts + 1):
            headers = {name: value.reveal() for name, value in settings.headers.items()}
            headers.update(extra)
            headers["Content-Type"] = "application/json"
            if settings.secret:  # a fresh timestamp per attempt, so retries stay in the window
                headers.update(signature_headers(settings.secret.reveal(), body))
            self._stats["requests"] += 1
            try:
                await post_once(self._client, settings.url.reveal(), body, headers, self.name)
            except Refused as exc:
                self._last_error = problem = str(exc)
                if exc.status == 413:
                    raise _TooLarge(problem) from None
                self._stats["refused"] += 1
                raise _Refused(problem) from None
            except RetryableError as exc:
                self._last_error = problem = str(exc)
                wait = exc.retry_after
                if wait is None:
                    wait = settings.backoff * 2 ** (attempt - 1)
            else:
                self._last_error = ""
                return
            if wait > settings.max_retry_after:
                raise RetryableError(f"{problem} (asked to wait {wait:.0f}s)", retry_after=wait)
            if attempt == settings.attempts:
                raise RetryableError(problem)
            self._stats["retries"] += 1
            await asyncio.sleep(wait)


def _batch_id(lines: Sequence[bytes]) -> str:
    """The same UUID for the same events, so a retried body is recognisably the same."""
    digest = hashlib.sha256(b"\n".join(lines)).hexdigest()
    return str(uuid.uuid5(BATCH_NAMESPACE, digest))
