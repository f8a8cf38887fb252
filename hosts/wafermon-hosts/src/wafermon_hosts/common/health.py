"""What every host's ``GET /v1/healthz`` shares: cached checks and who sees the details.

Health and ``/metrics`` are open paths (load balancers and Prometheus call them without a
token), so neither may cost backend work per call: checks run at most once per ``ttl`` and
concurrent callers share one run. Without the ``read`` scope a caller learns the status only;
details (spool folder, backends, errors) need ``read``, and every string in them has URL
credentials stripped (``wafermon.strip_credentials``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from wafermon import strip_credentials

from .auth import READ, granted
from .bodies import BodyResponse

T = TypeVar("T")

#: Seconds a health check's result is reused (``health_ttl`` in the gateway and central).
HEALTH_TTL = 5.0


class CachedCheck(Generic[T]):
    """The result of ``check()``, reused for ``ttl`` seconds; one run at a time."""

    def __init__(self, check: Callable[[], Awaitable[T]], ttl: float) -> None:
        self.check = check
        self.ttl = ttl
        self.runs = 0  # how many times the check really ran (tests, metrics)
        self._value: T | None = None
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._value is not None and time.monotonic() - self._at < self.ttl

    async def get(self) -> T:
        if self._fresh():
            assert self._value is not None
            return self._value
        async with self._lock:
            if not self._fresh():  # another caller may have refreshed it while we waited
                self._value = await self.check()
                self._at = time.monotonic()
                self.runs += 1
        assert self._value is not None
        return self._value


def scrub(value: Any) -> Any:
    """``value`` with URL credentials stripped from every string in it."""
    if isinstance(value, str):
        return strip_credentials(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


class HealthBody(Protocol):
    """A host's health Struct (``common.bodies``): only ``status`` is required."""

    @property
    def status(self) -> str: ...


def health_response(request: Request, body: HealthBody, status_code: int) -> Response:
    """``body`` for a caller holding ``read``; ``{"status": ...}`` for anyone else."""
    if READ not in granted(request):
        return BodyResponse({"status": body.status}, status_code=status_code)
    return BodyResponse(scrub(msgspec.to_builtins(body)), status_code=status_code)
