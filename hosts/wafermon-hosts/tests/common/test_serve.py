"""The serving wrapper: the heap alive after startup is frozen, requests pass through."""

from __future__ import annotations

import gc

import pytest

from wafermon_hosts.common.serve import freeze_heap_after_startup


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_startup_complete_freezes_the_heap(unfrozen: None) -> None:
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
    assert sent == [{"type": "lifespan.startup.complete"}]


async def test_http_requests_reach_the_app_untouched(unfrozen: None) -> None:
    seen = []

    async def app(scope, receive, send):
        seen.append((scope, receive, send))

    scope, receive, send = {"type": "http"}, object(), object()
    await freeze_heap_after_startup(app)(scope, receive, send)
    assert seen == [(scope, receive, send)]
    assert gc.get_freeze_count() == 0
