"""Helpers for the alerting tests: a real HTTP receiver for the webhook notifier, a gateway
with alerting on a real socket and a clock the test moves, and event posting."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import wafermon_backend_webhook.plugin
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.helpers.central import serve_app
from wafermon import App, Entity, ErrorInfo, Event, Metrics, encode_array
from wafermon.config import load_config
from wafermon_hosts.gateway.alerting import ManualClock
from wafermon_hosts.gateway.app import create_app, load_gateway


class Receiver:
    """Where the webhook notifier POSTs: records each alert; ``fail_next`` answers 503."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_next = 0
        self.down = False  # 503 until switched back
        self.retry_after: str | None = None  # a Retry-After header on the 503s
        self.attempt_times: list[float] = []
        self.url = ""
        self.arrived = asyncio.Event()

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.attempts += 1
        self.attempt_times.append(time.monotonic())
        if self.down or self.fail_next:
            self.fail_next = max(0, self.fail_next - 1)
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return JSONResponse({"error": "down"}, status_code=503, headers=headers)
        self.alerts.append({"at": time.monotonic(), **orjson.loads(body)})
        self.arrived.set()
        return JSONResponse({"ok": True})

    def of(self, rule: str, status: str | None = None) -> list[dict[str, Any]]:
        return [
            a
            for a in self.alerts
            if a["rule"] == rule and (status is None or a["status"] == status)
        ]


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    """The receiver on a real Hypercorn socket in this event loop."""
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    async with serve_app(app) as url:
        receiver.url = url
        yield receiver


def alerting_config(
    tmp_path: Path, db_url: str, receiver_url: str, site_id: str = "fab1", **alerting: Any
) -> Path:
    config = {
        "site_id": site_id,
        "backends": [{"name": "managed", "type": "sql", "config": {"url": db_url}}],
        "notifiers": [
            {"name": "hook", "type": "webhook", "config": {"url": receiver_url + "/hook"}}
        ],
        "gateway": {
            "alerting": {
                "enabled": True,
                "notifiers": ["hook"],
                "retry": {"attempts": 3, "initial": "50ms", "max": "200ms"},
                **alerting,
            }
        },
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.asynccontextmanager
async def alerting_gateway(plugins, config: Path, start: datetime) -> AsyncIterator[Any]:
    """A gateway on a real socket whose engine runs on a ManualClock the test drives
    (``gw.alerting.cycle()``); yields the Gateway with ``.url`` and ``.clock`` set."""
    plugins.register(wafermon_backend_webhook.plugin, "webhook")
    gw = load_gateway(load_config(config), plugins)
    gw.clock = gw.alerting.clock = ManualClock(start)
    gw.alerting.run_loop = False
    async with serve_app(create_app(gw)) as url:
        gw.url = url
        yield gw


def event(
    kind: str,
    when: datetime,
    *,
    job: str,
    app: str = "etl",
    site_id: str = "fab1",
    business_key: str | None = None,
    duration_s: float | None = None,
    mem_max_mb: float | None = None,
    entity_type: str = "job",
    parent_id: str | None = None,
) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        kind=kind,
        time=when,
        site_id=site_id,
        app=App(name=app),
        entity=Entity(type=entity_type, id=job, business_key=business_key, parent_id=parent_id),
        error=ErrorInfo(type="Boom", message="it broke") if kind == "failed" else None,
        metrics=Metrics(duration_s=duration_s, mem_max_mb=mem_max_mb),
    )


def run(when: datetime, *, job: str, ok: bool = True, minutes: float = 5, **kw: Any) -> list[Event]:
    """A job's started and finished (or failed) events."""
    end = when + timedelta(minutes=minutes)
    return [
        event("started", when, job=job, **kw),
        event("finished" if ok else "failed", end, job=job, duration_s=minutes * 60, **kw),
    ]


async def post(gw: Any, events: list[Event], token: str | None = None) -> None:
    """POST events to the gateway; the clock first moves to the newest event's time (events
    are sent as they happen; the engine never lets a future event time move a watermark)."""
    newest = max(e.time for e in events)
    if gw.clock.now() < newest:
        gw.clock.set(newest)
    url = gw.url
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            url + "/v1/ingest/managed", content=encode_array(events), headers=headers
        )
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == len(events), r.text


async def step(gw: Any, *, to: datetime | None = None) -> None:
    """Set the clock, run one evaluation cycle and wait for its notifications."""
    if to is not None:
        gw.clock.set(to)
    await gw.alerting.cycle()
    await gw.alerting.settle()


async def get(url: str, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(url + path, params=params)
        assert r.status_code == 200, r.text
        return r.json()
