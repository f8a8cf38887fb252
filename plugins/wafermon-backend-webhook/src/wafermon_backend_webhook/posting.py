"""One POST to a webhook and what its answer means, shared by the emitter and the notifiers.

The emitter retries inside ``emit`` and splits on 413; a notifier makes one attempt per call
and leaves retries to the gateway's alert engine. Both read an answer the same way, so the
classification lives here once:

- 2xx: delivered (``post_once`` returns).
- 408, 429, 5xx, refused connections, timeouts: ``RetryableError`` carrying the receiver's
  ``Retry-After`` (seconds or an HTTP date) as ``retry_after`` when it sent one.
- anything else (4xx, and 3xx: redirects are not followed, a moved hook is a config error):
  ``Refused``, a PermanentError with the receiver's answer in its message and the status.

Messages name the component, never the URL: chat webhook URLs are bearer credentials.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from wafermon import Health, PermanentError, RetryableError

RETRY_STATUS = frozenset({408, 429})
ANSWER_BYTES = 2048  # of a refusal's body kept for the reason; the rest is never read
ANSWER_CHARS = 300


class HttpClientPart:
    """The HTTP client's lifecycle the emitter and the notifiers share (a mixin before the
    component class): ``start`` opens it (no redirects followed), ``close`` ends it, ``health``
    reports the last outcome (a webhook has nothing to probe without posting). The class sets
    ``_client = None``, ``_last_error = ""`` and ``_stats`` in its ``__init__``."""

    settings: Any
    _client: httpx.AsyncClient | None
    _last_error: str
    _stats: dict[str, float]

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self.settings.timeout, verify=self.settings.verify_tls, follow_redirects=False
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def health(self) -> Health:
        if self._client is None:
            return Health(False, "not started")
        return Health(not self._last_error, self._last_error)

    def stats(self) -> dict[str, float]:
        return dict(self._stats)


class Refused(PermanentError):
    """The receiver refused the request for good; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def post_once(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], who: str
) -> None:
    """POST ``body`` once; return on 2xx, else raise RetryableError or Refused (see above)."""
    try:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            status = response.status_code
            answer = await _answer(response)  # read, so the connection is reused
            if 200 <= status < 300:
                return
            hinted = retry_after(response.headers.get("Retry-After"))
    except httpx.HTTPError as exc:
        raise RetryableError(f"{who}: {type(exc).__name__} posting to the webhook") from None
    problem = f"{who}: the webhook answered {status}: {answer}"
    if status >= 500 or status in RETRY_STATUS:
        raise RetryableError(problem, retry_after=hinted)
    raise Refused(problem, status)


async def _answer(response: httpx.Response) -> str:
    """The start of the receiver's answer, for the failure reason; bounded, one line.
    Reading a short body to its end lets httpx return the connection to its pool."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= ANSWER_BYTES:
            break  # a long answer is cut here; that connection is closed, not reused
    text = " ".join(data[:ANSWER_BYTES].decode("utf-8", "replace").split())
    return (text[:ANSWER_CHARS] + "…") if len(text) > ANSWER_CHARS else (text or "(no body)")


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
