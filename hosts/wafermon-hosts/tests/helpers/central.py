"""Helpers for the central host tests (a uniquely named module, importable from tests).

Sites are real gateways (the real sql store on SQLite, the real app) served by Hypercorn on
real sockets in the test's event loop; a "slow" site is a real gateway behind a middleware
that holds every answer back, a "dead" site is a port nobody listens on.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers.gateway import free_port, running
from wafermon import App, Entity, ErrorInfo, Event, Metrics, encode_array
from wafermon.config import load_config
from wafermon.plugins import Plugins
from wafermon_hosts.central import create_app as create_central_app
from wafermon_hosts.central import load_central
from wafermon_hosts.common.serve import serve
from wafermon_hosts.gateway import create_app as create_gateway_app
from wafermon_hosts.gateway.app import load_gateway

BASE = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)


def job_events(
    site_id: str,
    starts: Sequence[tuple[str, int]],
    *,
    app: str = "etch",
    failed: Sequence[str] = (),
) -> list[Event]:
    """For each (job id, second offset): a job started at BASE + offset that finished (or
    failed), and one subjob of it."""
    events = []
    for job_id, offset in starts:
        when = BASE + timedelta(seconds=offset)
        job = Entity(type="job", id=job_id, business_key=f"LOT-{job_id}")
        wafer = Entity(type="subjob", id=f"{job_id}/w01", parent_id=job_id, sub_key="wafer-01")
        end = "failed" if job_id in failed else "finished"
        common = {"site_id": site_id, "app": App(name=app)}
        events += [
            Event(event_id=uuid.uuid4(), kind="started", time=when, entity=job, **common),
            Event(event_id=uuid.uuid4(), kind="started", time=when, entity=wafer, **common),
            Event(
                event_id=uuid.uuid4(),
                kind="finished",
                time=when + timedelta(seconds=30),
                entity=wafer,
                metrics=Metrics(duration_s=30.0, cpu_user_s=20.0, mem_max_mb=128.0),
                **common,
            ),
            Event(
                event_id=uuid.uuid4(),
                kind=end,
                time=when + timedelta(seconds=40),
                entity=job,
                metrics=Metrics(duration_s=40.0),
                error=ErrorInfo(type="ChamberFault", message="RF power")
                if end == "failed"
                else None,
                **common,
            ),
        ]
    return events


class Delay:
    """ASGI middleware: every HTTP answer is held back ``seconds`` (a slow site). A request
    whose client gives up meanwhile is dropped, as a real server's would be."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self.state = app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received: list[dict] = []

        async def until_disconnect() -> None:
            while True:
                message = await receive()
                received.append(message)
                if message["type"] == "http.disconnect":
                    return

        watcher = asyncio.ensure_future(until_disconnect())
        try:
            await asyncio.wait_for(asyncio.shield(watcher), self.seconds)
            return  # the client went away
        except TimeoutError:
            pass
        finally:
            watcher.cancel()

        async def replay() -> dict:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)


@contextlib.asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """``app`` on a real Hypercorn socket in this event loop; yields its base URL."""
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, listen=f"127.0.0.1:{port}", stop=stop))
    for _ in range(400):
        if task.done():
            task.result()
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.025)
            continue
        writer.close()
        await writer.wait_closed()
        break
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        state = getattr(app, "state", None)
        gateway = getattr(state, "gateway", None)
        if gateway is not None:
            gateway.stream.close()
        stop.set()
        await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def site_gateway(
    tmp_path: Path,
    plugins: Plugins,
    site_id: str,
    events: Sequence[Event] = (),
    *,
    delay: float = 0.0,
    gateway: dict | None = None,
    store_type: str = "sql",
    sources: Sequence[dict] = (),
) -> AsyncIterator[str]:
    """A real gateway for ``site_id`` holding ``events``; yields its URL (``delay``: slow)."""
    folder = tmp_path / site_id
    folder.mkdir()
    config = {
        "site_id": site_id,
        "gateway": gateway or {},
        "backends": [
            {
                "name": "managed",
                "type": store_type,
                "config": {"url": f"sqlite+aiosqlite:///{folder / 'wafermon.db'}"},
            }
        ],
        "sources": list(sources),
    }
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    app = create_gateway_app(load_gateway(load_config(path), plugins))
    # Hypercorn runs the app's lifespan: the store is started and closed once, by the server
    # (starting it twice left the first engine's aiosqlite threads to answer a closed loop).
    async with serve_app(Delay(app, delay) if delay else app) as url:
        if events:
            await app.state.gateway.store.ingest(list(events))
        yield url


def dead_url() -> str:
    """A URL nobody listens on: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def write_central_config(tmp_path: Path, sites: dict[str, str | dict], **central: Any) -> Path:
    """A central config: ``sites`` maps name -> URL (or a full site entry)."""
    entries = [
        {"name": name, **(value if isinstance(value, dict) else {"url": value})}
        for name, value in sites.items()
    ]
    config = {"site_id": "central", "central": {"site_timeout": "1s", **central, "sites": entries}}
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.asynccontextmanager
async def central_client(
    tmp_path: Path, sites: dict[str, str | dict], **central: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A started central app for ``sites`` and an in-process client for it."""
    host = load_central(load_config(write_central_config(tmp_path, sites, **central)))
    app = create_central_app(host)
    async with running(app) as client:
        yield client, app


async def gateway_requests(url: str, route: str) -> float:
    """How many requests the gateway at ``url`` has answered on ``route`` (its /metrics)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("wafermon_http_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def encode_events(events: Sequence[Event]) -> bytes:
    return encode_array(list(events))
