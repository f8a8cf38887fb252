"""Serving the Dash app: its Flask (WSGI) server under Hypercorn, like every wafermon host.

Hypercorn runs WSGI apps in a thread pool, so slow gateway answers in one callback do not hold
up the others; SIGTERM / SIGINT stop it gracefully (``wafermon_hosts.common.serve``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from wafermon import Secret
from wafermon_hosts.common.serve import run


def build(
    *,
    gateway: str | None,
    central: str | None,
    sidecar: str | None = None,
    token: Secret | None = None,
    sidecar_token: Secret | None = None,
    refresh_s: float = 5.0,
    count_cap: int = 1000,
    timeout_s: float = 10.0,
    login: bool = False,
    secure_cookie: bool = False,
    ca_file: Path | None = None,
    admin_token: Secret | None = None,
) -> Any:
    """The Dash app for a gateway or a central host (exactly one of them).

    ``login``: every page needs a session, opened with a read token of that gateway or
    central (``login.install_login``); who signs in with an admin token may silence alerts.
    ``admin_token`` (without ``login``): the token silences are posted with (``admin``).
    """
    from .app import Context, create_app
    from .client import CENTRAL, GATEWAY, Api, Sidecar
    from .login import install_login

    if (gateway is None) == (central is None):
        raise ValueError("give exactly one of --gateway URL or --central URL")
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        verify = ssl.create_default_context(cafile=str(ca_file))
    api = Api(
        gateway or central,
        mode=GATEWAY if gateway else CENTRAL,
        token=token,
        timeout=timeout_s,
        verify=verify,
    )
    ctx = Context(
        api,
        sidecar=Sidecar(sidecar, token=sidecar_token) if sidecar else None,
        refresh_s=refresh_s,
        count_cap=count_cap,
        login=login,
        admin_token=admin_token,
    )
    app = create_app(ctx)
    if login:
        mode = "central" if central else "gateway"
        install_login(
            app.server,
            api.grants_read,
            target=f"{mode} {api.shown_url}",
            secure_cookie=secure_cookie,
            check_admin=api.grants_admin,
        )
    return app


def serve(
    app: Any, listen: str, *, certfile: Path | None = None, keyfile: Path | None = None
) -> None:
    """Serve the Dash app's Flask server on ``listen`` (HTTPS with a cert and key) until
    SIGTERM / SIGINT."""
    run(wsgi_app(app), listen=listen, certfile=certfile, keyfile=keyfile)


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
