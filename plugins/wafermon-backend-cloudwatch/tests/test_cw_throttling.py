"""Throttling: a real HTTP proxy in front of moto answers ThrottlingException as AWS does
(HTTP 400, ``__type`` in a JSON body) for the first N calls, then forwards to moto. moto never
throttles, so this is how the retry path meets real answers on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from test_cw_moto import adapter, emitter

from wafermon import PermanentError, Query, RetryableError


@contextlib.asynccontextmanager
async def throttling_proxy(
    upstream: str,
    throttle: int,
    refuse_path: str | None = None,
    refuse_body: bytes = b"",
    refuse_target: str = "",
):
    state = {"throttled": 0, "calls": 0, "refused": 0}

    async def handle(request: Request) -> Response:
        state["calls"] += 1
        body = await request.body()
        target = request.headers.get("x-amz-target", "")
        if (
            refuse_path == request.url.path
            and refuse_body in body
            and target.endswith(refuse_target)
        ):
            state["refused"] += 1
            return Response(  # rest-json (X-Ray) reads the header, json (Logs) the __type
                b'{"__type":"InvalidParameterException","message":"refused by the test"}',
                400,
                headers={"x-amzn-ErrorType": "InvalidParameterException"},
                media_type="application/json",
            )
        if target.endswith("PutLogEvents") and state["throttled"] < throttle:
            state["throttled"] += 1
            return Response(
                b'{"__type":"ThrottlingException","message":"Rate exceeded"}',
                400,
                media_type="application/x-amz-json-1.1",
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with httpx.AsyncClient() as http:
            answer = await http.request(
                request.method, upstream + request.url.path, content=body, headers=headers
            )
        keep = {
            k: v
            for k, v in answer.headers.items()
            if k.lower()
            not in ("content-length", "transfer-encoding", "connection", "content-encoding")
        }
        return Response(answer.content, answer.status_code, headers=keep)

    app = Starlette(routes=[Route("/{path:path}", handle, methods=["POST", "GET"])])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as probe:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                await probe.get(url + "/ping")
                break
            await asyncio.sleep(0.05)
    try:
        yield url, state
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_throttled_calls_are_retried_until_they_pass(aws, make_event):
    events = [make_event() for _ in range(3)]
    async with throttling_proxy(aws["endpoint_url"], throttle=2) as (url, state):
        em = emitter(dict(aws, endpoint_url=url), metrics=False, max_attempts=5)
        await em.start()
        await em.emit(events)
        await em.close()
    assert state["throttled"] == 2
    got = await adapter(aws).query(Query(site_id="fab1"))
    assert [e.event_id for e in got.events] == [e.event_id for e in events]


async def test_throttling_beyond_the_attempts_is_retryable(aws, make_event):
    async with throttling_proxy(aws["endpoint_url"], throttle=100) as (url, state):
        em = emitter(dict(aws, endpoint_url=url), metrics=False, max_attempts=2)
        await em.start()
        with pytest.raises(RetryableError, match="ThrottlingException: Rate exceeded"):
            await em.emit([make_event()])
        await em.close()
    assert state["throttled"] == 2  # botocore's attempts, then handed to the router


async def test_refused_trace_documents_do_not_cost_the_events(aws, make_event):
    events = [make_event("finished", duration_s=1) for _ in range(2)]
    async with throttling_proxy(aws["endpoint_url"], 0, refuse_path="/TraceSegments") as (
        url,
        state,
    ):
        em = emitter(dict(aws, endpoint_url=url), metrics=False, xray=True)
        await em.start()
        await em.emit(events)  # no PermanentError: the events themselves were stored
        await em.close()
    assert state["refused"] == 1
    assert em.stats()["trace_documents_refused"] == 1
    got = await adapter(aws).query(Query(site_id="fab1"))
    assert [e.event_id for e in got.events] == [e.event_id for e in events]


async def test_a_refused_log_call_names_only_its_events(aws, make_event):
    etch = [make_event(app="etch") for _ in range(2)]
    litho = [make_event(app="litho") for _ in range(2)]
    refuse = {"refuse_path": "/", "refuse_body": b"litho", "refuse_target": "PutLogEvents"}
    async with throttling_proxy(aws["endpoint_url"], 0, **refuse) as (url, state):
        em = emitter(dict(aws, endpoint_url=url), metrics=False)
        await em.start()
        with pytest.raises(PermanentError, match="InvalidParameterException") as info:
            await em.emit(etch + litho)
        await em.close()
    assert state["refused"] == 1  # the litho stream's call only
    assert sorted(map(str, info.value.event_ids)) == sorted(str(e.event_id) for e in litho)
    got = await adapter(aws).query(Query(site_id="fab1"))
    assert [e.event_id for e in got.events] == [e.event_id for e in etch]
