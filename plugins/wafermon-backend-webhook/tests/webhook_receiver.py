"""A real HTTP receiver for the webhook tests: a Starlette app served by Hypercorn on 127.0.0.1.

It checks every request's signature with its own HMAC code (not the plugin's ``verify``, so a
bug there cannot hide itself) and answers as told through ``POST /control``: fail with a
status, throttle with a Retry-After, answer late, refuse bodies with too many events, then
recover.
A uniquely named module (not conftest) so several packages' tests can run in one pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = "whsec-test-0123456789"


class Receiver:
    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        self.plan: list[dict[str, Any]] = []  # answers to give next, in order
        self.max_events: int | None = None  # 413 for a generic body with more events
        self.requests: list[dict[str, Any]] = []  # every request, accepted or not
        self.url = ""

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["status"] == 200]

    def _signature_ok(self, request: Request, body: bytes) -> bool:
        assert self.secret is not None
        timestamp = request.headers.get("x-wafermon-timestamp", "")
        offered = request.headers.get("x-wafermon-signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        mac = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return any(
            hmac.compare_digest("v1=" + mac.hexdigest(), v.strip()) for v in offered.split(",")
        )

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        record = {
            "at": time.monotonic(),
            "headers": dict(request.headers),
            "body": orjson.loads(body),
            "signed": None,
        }
        self.requests.append(record)
        if self.secret is not None:
            record["signed"] = self._signature_ok(request, body)
            if not record["signed"]:
                record["status"] = 401
                return JSONResponse({"error": "bad signature"}, 401)
        if self.plan:
            step = self.plan.pop(0)
            if step.get("delay"):  # a slow receiver: the sender's timeout fires first
                await asyncio.sleep(step["delay"])
            record["status"] = step["status"]
            headers = {"Retry-After": step["retry_after"]} if step.get("retry_after") else None
            return Response(step.get("body", "no"), step["status"], headers=headers)
        events = record["body"].get("events") if isinstance(record["body"], dict) else None
        if self.max_events is not None and events is not None and len(events) > self.max_events:
            record["status"] = 413
            return Response("too many events", 413)
        record["status"] = 200
        return Response("ok", 200)

    async def control(self, request: Request) -> Response:
        command = orjson.loads(await request.body())
        self.plan.extend(command.get("plan", []))
        if "max_events" in command:
            self.max_events = command["max_events"]
        if command.get("recover"):
            self.plan.clear()
            self.max_events = None
        return JSONResponse({"planned": len(self.plan)})

    async def command(self, **command: Any) -> None:
        """Tell the receiver what to do next, over HTTP like any client would."""
        async with httpx.AsyncClient() as http:
            (await http.post(self.url + "/control", json=command)).raise_for_status()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def running_receiver(secret: str | None = SECRET) -> AsyncIterator[Receiver]:
    receiver = Receiver(secret)
    app = Starlette(
        routes=[
            Route("/hook", receiver.hook, methods=["POST"]),
            Route("/control", receiver.control, methods=["POST"]),
        ]
    )
    port = _free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    receiver.url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as probe:
        for _ in range(200):
            if task.done():
                task.result()
            with contextlib.suppress(httpx.TransportError):
                await probe.post(receiver.url + "/control", json={})
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the test receiver did not start")
    try:
        yield receiver
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
