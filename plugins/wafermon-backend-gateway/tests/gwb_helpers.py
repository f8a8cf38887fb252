"""A real gateway (SQLite store) served by Hypercorn on a real socket, for the emitter to hit.

A uniquely named module (not conftest) so several packages' tests can run in one pytest."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

import wafermon_backend_sql.plugin
from wafermon import hookimpl
from wafermon.config import load_config
from wafermon.plugins import Plugins
from wafermon_hosts.common.serve import serve
from wafermon_hosts.gateway import create_app
from wafermon_hosts.gateway.app import load_gateway

TOKEN = "ingest-secret"


class DropMarked:
    """A transform plugin: the gateway drops (and so rejects) events marked {"drop": true}."""

    @hookimpl
    def transform_events(self, events):
        return [e for e in events if not e.metadata.get("drop")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, **settings: object) -> AsyncIterator[tuple[str, object]]:
    """A gateway on 127.0.0.1 with a SQLite store; yields (base URL, the store)."""
    port = free_port()
    extra = "".join(f", {k}: {v}" for k, v in settings.items())
    config = tmp_path / f"site-{port}.yaml"
    config.write_text(
        "site_id: fab1\n"
        f"gateway: {{listen: '127.0.0.1:{port}', tokens: {{ingest: {TOKEN}}}{extra}}}\n"
        f"backends: [{{name: managed, type: sql, config: "
        f"{{url: 'sqlite+aiosqlite:///{tmp_path}/gw-{port}.db'}}}}]\n"
    )
    plugins = Plugins()
    plugins.register(wafermon_backend_sql.plugin, "sql")
    plugins.register(DropMarked(), "drop-marked")
    gw = load_gateway(load_config(config), plugins)
    app = create_app(gw)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, listen=f"127.0.0.1:{port}", stop=stop))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as probe:
        for _ in range(200):
            if task.done():
                task.result()
            with contextlib.suppress(httpx.TransportError):
                await probe.get(f"{url}/v1/healthz")
                break
            await asyncio.sleep(0.05)
    try:
        yield url, gw.store
    finally:
        app.state.gateway.stream.close()
        stop.set()
        await asyncio.wait_for(task, 15)
