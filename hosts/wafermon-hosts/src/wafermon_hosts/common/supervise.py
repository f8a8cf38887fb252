"""Plugin components a host keeps running for its whole life, whatever they do.

A backend or source that cannot start (its server is down, its credentials are wrong) must not
stop the host: the failure is recorded, shown by health, logged once per distinct reason, and
the start is tried again on a later use. A health check that raises or hangs is reported, never
raised. The sidecar's backends and the gateway's sources are both supervised here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Generic, TypeVar

from wafermon import Health, describe
from wafermon.interfaces import Component

from .logs import get_logger

log = get_logger("wafermon_hosts")

C = TypeVar("C", bound=Component)


async def checked_health(component: Any, timeout: float) -> Health:
    """``health()`` with a deadline; a component that raises or hangs is reported not ok."""
    try:
        async with asyncio.timeout(timeout):
            return await component.health()
    except TimeoutError:
        return Health(False, f"health check did not answer within {timeout:g}s")
    except Exception as exc:  # noqa: BLE001 - health must not raise; report it instead
        return Health(False, f"health check failed: {describe(exc)}")


class Supervised(Generic[C]):
    """A component started lazily: a failed start is kept as ``error`` and retried on the next
    ``ensure_started`` that comes ``retry_s`` or more after it."""

    def __init__(self, component: C, *, role: str, timeout: float, retry_s: float = 0.0) -> None:
        self.component = component
        self.role = role  # "backend", "source": how logs name it
        self.timeout = timeout
        self.retry_s = retry_s
        self.started = False
        self.error: str | None = None
        self._retry_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.component.name

    async def start(self) -> None:
        """Start the component; a failure is recorded and logged, not raised."""
        async with self._lock:
            if self.started:
                return
            try:
                async with asyncio.timeout(self.timeout):
                    await self.component.start()
            except Exception as exc:  # noqa: BLE001 - any failure is reported, not fatal
                error = f"failed to start: {describe(exc)}"
                if error != self.error:  # once per distinct reason, not once per retry
                    log.warning(
                        f"{self.role} failed to start", **{self.role: self.name}, error=error
                    )
                self.error = error
                self._retry_at = time.monotonic() + self.retry_s
                with contextlib.suppress(Exception):
                    await self.component.close()
                return
            self.started, self.error = True, None

    async def ensure_started(self) -> bool:
        """Whether the component is started, after a new try if one is due."""
        if not self.started and time.monotonic() >= self._retry_at:
            await self.start()
        return self.started

    async def health(self) -> Health:
        if not self.started:
            return Health(False, self.error or "not started")
        return await checked_health(self.component, self.timeout)

    async def close(self) -> None:
        async with self._lock:
            if self.started:
                self.started = False
                await self.component.close()
