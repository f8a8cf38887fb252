"""Talking to one site's gateway: a pooled HTTP client with a hard deadline per request.

Every outcome is a ``SiteAnswer``; nothing here raises for a site's fault. ``status`` is
``ok`` (200 and JSON), ``rejected`` (the gateway refused the request itself with 400 or 404:
the client's fault, passed on), ``failed`` (refused connection, TLS error, 5xx, a token the
gateway does not accept) or ``timed_out`` (no complete answer within the site's timeout).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from typing import Any

import attrs
import httpx
import orjson
from msgspec import UNSET, UnsetType

from wafermon import describe

from .bodies import SiteStatus
from .settings import SiteSettings

#: Statuses that mean the site gave no usable answer.
MISSING = ("failed", "timed_out")


@attrs.frozen
class SiteAnswer:
    site: str
    status: str  # ok | rejected | failed | timed_out
    body: Any = None  # the JSON answer (ok, rejected)
    http_status: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    cached: bool = False

    @property
    def missing(self) -> bool:
        return self.status in MISSING

    def summary(
        self, count: int | UnsetType = UNSET, sources: dict[str, Any] | UnsetType = UNSET
    ) -> SiteStatus:
        """The site's entry in an answer's ``sites`` object."""
        return SiteStatus(
            status=self.status,  # type: ignore[arg-type]  # ok | rejected | failed | timed_out
            latency_ms=round(self.latency_ms, 2),
            cached=True if self.cached else UNSET,
            error=self.error or UNSET,
            count=count,
            sources=sources,
        )


class AnswerTooLarge(Exception):
    pass


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body, refused as soon as it grows past ``limit`` bytes (central's memory bound)."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise AnswerTooLarge
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class SiteClient:
    """GETs against one gateway, each bounded by ``timeout`` seconds end to end."""

    def __init__(
        self, site: SiteSettings, *, timeout: float, max_connections: int, max_bytes: int
    ) -> None:
        self.name = site.name
        self.url = site.url
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": "wafermon-central"}
        if site.token:
            headers["Authorization"] = f"Bearer {site.token.reveal()}"
        verify: bool | ssl.SSLContext = site.verify_tls
        if site.verify_tls and (site.ca_file is not None or site.client_cert is not None):
            verify = ssl.create_default_context(
                cafile=str(site.ca_file) if site.ca_file is not None else None
            )
            if site.client_cert is not None and site.client_key is not None:
                verify.load_cert_chain(str(site.client_cert), str(site.client_key))
        self.max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            base_url=site.url,
            headers=headers,
            verify=verify,
            # The deadline is enforced around the whole exchange below; httpx's own timeouts
            # are a backstop for a request that somehow outlives it.
            timeout=httpx.Timeout(timeout + 1.0),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=False,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> SiteAnswer:
        began = time.perf_counter()

        def answer(status: str, **kw: Any) -> SiteAnswer:
            latency = (time.perf_counter() - began) * 1000
            return SiteAnswer(self.name, status, latency_ms=latency, **kw)

        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream("GET", path, params=list(params)) as response:
                    content = await _read_capped(response, self.max_bytes)
        except AnswerTooLarge:
            return answer("failed", error=f"the answer is larger than {self.max_bytes} bytes")
        except (TimeoutError, httpx.TimeoutException):
            return answer("timed_out", error=f"no answer within {self.timeout:g}s")
        except httpx.HTTPError as exc:
            return answer("failed", error=describe(exc))
        except (OSError, ssl.SSLError) as exc:
            return answer("failed", error=describe(exc))
        code = response.status_code
        try:
            body = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            body = None
            if code == 200:
                return answer("failed", http_status=code, error="the answer is not JSON")
        if code == 200:
            return answer("ok", body=body, http_status=code)
        message = body.get("error") if isinstance(body, dict) else None
        if code in (401, 403):
            return answer(
                "failed",
                http_status=code,
                error=f"the gateway refused central's token (HTTP {code})",
            )
        if code in (400, 404):
            return answer("rejected", body=body, http_status=code, error=message)
        detail = f"HTTP {code}" + (f": {message}" if message else "")
        return answer("failed", http_status=code, body=body, error=detail)
