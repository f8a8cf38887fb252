"""Serving: the heap alive after startup is frozen, requests pass through, and a WSGI app
(the dashboard's Flask) is still served as WSGI."""

from __future__ import annotations

import asyncio
import gc

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from wafermon.testing.processes import free_port
from wafermon_hosts.common.serve import GC_THRESHOLDS, freeze_heap_after_startup, serve


@pytest.fixture
def unfrozen():
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_startup_complete_freezes_the_heap_and_collects_less_often(
    unfrozen: None,
) -> None:
    sent: list[dict] = []
    froze_before_startup_done: list[int] = []

    async def app(scope, receive, send):
        froze_before_startup_done.append(gc.get_freeze_count())
        await send({"type": "lifespan.startup.complete"})

    async def send(message):
        sent.append(message)

    await freeze_heap_after_startup(app)({"type": "lifespan"}, None, send)
    assert froze_before_startup_done == [0]
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == GC_THRESHOLDS
    assert sent == [{"type": "lifespan.startup.complete"}]


async def test_http_requests_reach_the_app_untouched(unfrozen: None) -> None:
    seen = []

    async def app(scope, receive, send):
        seen.append((scope, receive, send))

    scope, receive, send = {"type": "http"}, object(), object()
    await freeze_heap_after_startup(app)(scope, receive, send)
    assert seen == [(scope, receive, send)]
    assert gc.get_freeze_count() == 0


def _wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi " + environ["PATH_INFO"].encode()]


async def _asgi_page(_request):
    return PlainTextResponse("asgi")


@pytest.mark.parametrize(
    ("app", "answer"),
    [(_wsgi, "wsgi /page"), (Starlette(routes=[Route("/page", _asgi_page)]), "asgi")],
    ids=["wsgi", "asgi"],
)
async def test_serve_answers_wsgi_and_asgi_apps_with_the_heap_frozen(unfrozen, app, answer):
    listen = f"127.0.0.1:{free_port()}"
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, listen=listen, stop=stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://{listen}") as http:
            for _ in range(100):
                try:
                    response = await http.get("/page")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        assert (response.status_code, response.text) == (200, answer)
        assert gc.get_freeze_count() > 0
    finally:
        stop.set()
        await server
