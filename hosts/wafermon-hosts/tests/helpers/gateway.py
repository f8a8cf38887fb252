"""Helpers shared by the gateway tests (a uniquely named module, importable from tests)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
from starlette.routing import Route

from wafermon import Health, Query, QueryAdapter, QueryResult, RetryableError, hookimpl
from wafermon_backend_sql import SqlStore
from wafermon_hosts.common.serve import serve

# -- test-only components: real classes, registered like any plugin's ----------------------------


@attrs.frozen
class SlowSettings:
    delay: float = 30.0


class SlowAdapter(QueryAdapter):
    """Answers after ``delay`` seconds (settings), to exceed the gateway's source timeout."""

    Settings = SlowSettings

    async def query(self, query: Query) -> QueryResult:
        await asyncio.sleep(self.settings.delay)
        return QueryResult([])


class FailingAdapter(QueryAdapter):
    """Every query raises, the way an unreachable backend's client would."""

    async def query(self, query: Query) -> QueryResult:
        raise ConnectionRefusedError("archive.example:9200 refused the connection")

    async def health(self) -> Health:
        return Health(False, "connection refused")


class BrokenStartAdapter(FailingAdapter):
    async def start(self) -> None:
        raise RetryableError("cannot reach the archive")


class FlakySqlStore(SqlStore):
    """The real SQL store with a switch that makes it behave as if its database went away."""

    down = False

    def _check(self) -> None:
        if type(self).down:
            raise RetryableError("database connection lost")

    async def ingest(self, events, *, bodies=None):
        self._check()
        return await super().ingest(events, bodies=bodies)

    async def ingest_wire(self, events, lines):
        self._check()
        return await super().ingest_wire(events, lines)

    async def entities(self, query):
        self._check()
        return await super().entities(query)

    async def health(self) -> Health:
        return Health(False, "database connection lost") if type(self).down else Health(True)


class TestComponents:
    """A plugin object providing the test-only component types."""

    @hookimpl
    def register_query_adapters(self, register):
        register("slow", SlowAdapter)
        register("failing", FailingAdapter)
        register("broken-start", BrokenStartAdapter)

    @hookimpl
    def register_emitters(self, register):
        register("flaky-sql", FlakySqlStore)


@contextlib.asynccontextmanager
async def running(app) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, and an in-process client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def served(app, **tls: Any) -> AsyncIterator[str]:
    """The app on a real Hypercorn socket in this event loop; yields its base URL."""
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, listen=f"127.0.0.1:{port}", stop=stop, **tls))
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    verify = str(tls["certfile"]) if tls else True
    async with httpx.AsyncClient(verify=verify) as probe:
        for _ in range(200):
            if task.done():
                task.result()
            with contextlib.suppress(httpx.TransportError):
                await probe.get(f"{url}/v1/healthz")
                break
            await asyncio.sleep(0.05)
    try:
        yield url
    finally:
        app.state.gateway.stream.close()
        stop.set()
        await asyncio.wait_for(task, 15)


class Buggy:
    """A plugin whose route has a bug: GET /v1/x/buggy/boom raises."""

    @hookimpl
    def register_routes(self, host):
        def boom(_request):
            raise ZeroDivisionError("the plugin divided by zero")

        return [Route("/v1/x/buggy/boom", boom)] if host == "gateway" else None


#: Tokens the fuzzed apps run with: every host's schemathesis run has auth on.
FUZZ_TOKENS = {
    "ingest": "fuzz-ingest-token",
    "read": "fuzz-read-token",
    "admin": "fuzz-admin-token",
}


def call_with_token(case, check) -> None:
    """Run a schemathesis case with the token its operation needs (its documented
    x-wafermon-scope); auth must never refuse it."""
    scope = case.operation.definition.raw.get("x-wafermon-scope") or "read"
    token = FUZZ_TOKENS[scope]
    # Schemathesis may generate its own Authorization value for the bearer scheme: replace it.
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.headers = {**headers, "Authorization": f"Bearer {token}"}
    response = case.call_and_validate(checks=[check])
    assert response.status_code not in (401, 403), (case.path, response.status_code)
