"""Serving the Dash app: its Flask (WSGI) server under Hypercorn, like every wafermon host.

Hypercorn runs WSGI apps in a thread pool, so slow gateway answers in one callback do not hold
up the others; SIGTERM / SIGINT stop it gracefully (``wafermon_hosts.common.serve``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from wafermon_hosts.common.serve import run


def build(
    *,
    gateway: str | None,
    central: str | None,
    sidecar: str | None = None,
    token: str | None = None,
    refresh_s: float = 5.0,
    count_cap: int = 1000,
    timeout_s: float = 10.0,
) -> Any:
    """The Dash app for a gateway or a central host (exactly one of them)."""
    from .app import Context, create_app
    from .client import CENTRAL, GATEWAY, Api, Sidecar

    if (gateway is None) == (central is None):
        raise ValueError("give exactly one of --gateway URL or --central URL")
    api = Api(
        gateway or central, mode=GATEWAY if gateway else CENTRAL, token=token, timeout=timeout_s
    )
    ctx = Context(
        api,
        sidecar=Sidecar(sidecar) if sidecar else None,
        refresh_s=refresh_s,
        count_cap=count_cap,
    )
    return create_app(ctx)


def serve(app: Any, listen: str) -> None:
    """Serve the Dash app's Flask server on ``listen`` until SIGTERM / SIGINT."""
    run(wsgi_app(app), listen=listen)


def wsgi_app(app: Any) -> Callable[..., Iterable[bytes]]:
    """The Dash app's WSGI callable, made safe for Hypercorn.

    Hypercorn's WSGI wrapper starts the response at the first body chunk, so an answer with an
    empty body (a 304 Not Modified for a cached script) never starts and fails with a 500. Every
    answer here yields at least one (possibly empty) chunk.
    """
    server = app.server

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return _at_least_one_chunk(server(environ, start_response))

    return call


def _at_least_one_chunk(body: Iterable[bytes]) -> Iterator[bytes]:
    try:
        empty = True
        for chunk in body:
            empty = False
            yield chunk
        if empty:
            yield b""
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
