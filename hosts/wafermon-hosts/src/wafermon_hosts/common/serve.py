"""Serving a host app with Hypercorn: HTTP or HTTPS, graceful stop on SIGTERM or SIGINT.

The host owns the signal handlers (Hypercorn's ``shutdown_trigger``) so it can tell long-lived
responses (server-sent event streams) to finish *before* Hypercorn waits for open requests;
otherwise every open stream would hold the shutdown for the whole graceful timeout.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from hypercorn.utils import is_asgi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Seconds Hypercorn lets open requests finish after a stop signal.
GRACEFUL_TIMEOUT = 10.0
#: The collector's thresholds once a host has started (see ``freeze_heap_after_startup``).
GC_THRESHOLDS = (10_000, 10, 10)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:18000`` for IPv6) -> (host, port); ValueError naming the fault."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:18000, got {text!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def hypercorn_config(
    listen: str,
    *,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    client_ca: Path | None = None,
) -> Config:
    """Hypercorn's config; ``client_ca`` makes TLS mutual (a client without a cert signed by
    that CA fails the handshake)."""
    config = Config()
    host, port = parse_listen(listen)
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    if certfile is not None and keyfile is not None:
        config.certfile, config.keyfile = str(certfile), str(keyfile)
        if client_ca is not None:
            config.ca_certs = str(client_ca)
            config.verify_mode = ssl.CERT_REQUIRED
    config.accesslog = None  # the host logs each request itself, as JSON
    config.errorlog = logging.getLogger("hypercorn.error")  # JSON via common.logs
    config.graceful_timeout = GRACEFUL_TIMEOUT
    return config


async def serve(
    app: ASGIApp,
    *,
    listen: str,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    client_ca: Path | None = None,
    stop: asyncio.Event,
) -> None:
    """Serve until ``stop`` is set, then shut down gracefully (lifespan shutdown included).

    ``app`` is ASGI, or WSGI (Hypercorn tells them apart by whether it is a coroutine).
    """
    config = hypercorn_config(listen, certfile=certfile, keyfile=keyfile, client_ca=client_ca)
    if is_asgi(app):
        app = freeze_heap_after_startup(app)
    else:  # WSGI (the dashboard's Flask): no startup to wait for, it is all built now
        gc.collect()
        gc.freeze()
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def freeze_heap_after_startup(app: ASGIApp) -> ASGIApp:
    """``app`` that moves everything alive once its startup is done out of the collector's
    reach (``gc.freeze``).

    Modules, plugins and clients loaded at startup are most of a host's heap and live until it
    stops; a full collection walks them all, and measured 40-170 ms pauses under load, which
    every request in flight waited out (the sidecar's p99). Frozen, a full collection walks
    only what was made since.

    The young generation's threshold is raised too (``GC_THRESHOLDS``): with Python's default
    of 700, Hypercorn's and the app's per-request containers set off a collection every few
    requests, and the sidecar spent about 7 us of each single-event request in the collector.
    Objects without cycles are freed by their reference count whatever the threshold; only
    cyclic garbage waits longer, 10,000 allocations at most.
    """

    async def frozen_after_startup(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_frozen(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
                gc.set_threshold(*GC_THRESHOLDS)
            await send(message)

        await app(scope, receive, send_frozen)

    return frozen_after_startup


def run(
    app: ASGIApp,
    *,
    listen: str,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    client_ca: Path | None = None,
    on_stop: Sequence[Callable[[], None]] = (),
) -> None:
    """Serve in this thread until SIGTERM or SIGINT; ``on_stop`` callbacks run first."""

    async def main() -> None:
        stop = asyncio.Event()

        def stopping() -> None:
            for callback in on_stop:
                callback()
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping)
        await serve(
            app, listen=listen, certfile=certfile, keyfile=keyfile, client_ca=client_ca, stop=stop
        )

    asyncio.run(main())
