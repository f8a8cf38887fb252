"""GET /v1/stream over real HTTP: ingested events arrive, filters hold, slow readers drop."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import orjson

from tests.helpers.gateway import served
from wafermon import encode_array, encode_ndjson
from wafermon.wire import read_batch
from wafermon_hosts.gateway.stream import Broadcaster


async def read_sse(response: httpx.Response, frames: asyncio.Queue) -> None:
    """Parse the stream into frames: {"comment": ...} or {"id": ..., "data": ...}."""
    frame: dict = {}
    async for line in response.aiter_lines():
        if line == "":
            if frame:
                await frames.put(frame)
            frame = {}
        elif line.startswith(":"):
            await frames.put({"comment": line[1:].strip()})
        else:
            field, _, value = line.partition(":")
            frame[field] = value.strip()


@contextlib.asynccontextmanager
async def subscribe(http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None):
    frames: asyncio.Queue = asyncio.Queue()
    async with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(read_sse(response, frames))
        # The first comment comes once the subscription exists: events from now on arrive.
        assert (await asyncio.wait_for(frames.get(), 5)) == {"comment": "connected"}
        try:
            yield frames
        finally:
            reader.cancel()


async def next_data(frames: asyncio.Queue, timeout: float = 5) -> dict:
    while True:
        frame = await asyncio.wait_for(frames.get(), timeout)
        if "data" in frame:
            return {"id": frame["id"], "event": orjson.loads(frame["data"])}


async def test_stream_delivers_accepted_events_and_honours_filters(build_app, make_event):
    app = build_app()
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        async with (
            subscribe(http, "/v1/stream") as everything,
            subscribe(http, "/v1/stream?app=litho&site=fab1") as litho,
        ):
            assert len(app.state.gateway.stream.subscribers) == 2
            etch, litho_event = make_event(app="etch"), make_event(app="litho")
            r = await http.post("/v1/ingest/managed", content=encode_array([etch, litho_event]))
            assert r.json()["accepted"] == 2
            got = [await next_data(everything), await next_data(everything)]
            assert [g["id"] for g in got] == [str(etch.event_id), str(litho_event.event_id)]
            assert got[0]["event"]["app"] == {"name": "etch"}
            assert (await next_data(litho))["id"] == str(litho_event.event_id)
            # A duplicate is not news: nothing more arrives on either stream.
            await http.post("/v1/ingest/managed", content=encode_array([etch]))
            late = make_event(app="litho")
            await http.post("/v1/ingest/managed", content=encode_array([late]))
            assert (await next_data(everything))["id"] == str(late.event_id)
            assert (await next_data(litho))["id"] == str(late.event_id)
        await wait_for_subscribers(app, 0)


async def test_stream_sends_heartbeats(build_app):
    app = build_app(heartbeat_s=0.1)
    async with (
        served(app) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
        subscribe(http, "/v1/stream") as frames,
    ):
        comments = []
        while len(comments) < 2:
            frame = await asyncio.wait_for(frames.get(), 5)
            comments += [frame["comment"]] if "comment" in frame else []
        assert "heartbeat" in comments


async def wait_for_subscribers(app, n: int) -> None:
    for _ in range(200):
        if len(app.state.gateway.stream.subscribers) == n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {n} subscribers")


async def test_a_slow_subscriber_drops_its_oldest_events_and_is_told(make_event):
    hub = Broadcaster(queue_size=3)
    sub = hub.subscribe()
    stream = hub.frames(sub)
    assert await anext(stream) == b"retry: 3000\n: connected\n\n"
    events = [make_event() for _ in range(5)]
    hub.publish(events)  # never blocks, even though nobody is reading
    chunk = (await anext(stream)).decode()
    assert chunk.startswith(": dropped 2 events")
    assert [line[4:] for line in chunk.splitlines() if line.startswith("id: ")] == [
        str(e.event_id) for e in events[2:]
    ]
    hub.close()
    assert [c async for c in stream] == []


async def test_closing_the_hub_ends_streams(make_event):
    hub = Broadcaster(heartbeat_s=30)
    sub = hub.subscribe(app="etch")
    stream = hub.frames(sub)
    await anext(stream)
    hub.publish([make_event(app="litho")])  # filtered out: nothing queued
    assert not sub.queue
    waiting = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.05)
    hub.close()
    try:
        await asyncio.wait_for(waiting, 1)
        raise AssertionError("the stream should have ended")
    except StopAsyncIteration:
        pass


async def test_head_answers_without_opening_a_stream(client):
    r = await client.head("/v1/stream")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")


async def test_a_client_reconnecting_with_last_event_id_gets_what_it_missed(build_app, make_event):
    app = build_app()
    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        seen = make_event(app="litho")
        async with subscribe(http, "/v1/stream?app=litho") as frames:
            await http.post("/v1/ingest/managed", content=encode_array([seen]))
            last_id = (await next_data(frames))["id"]
        await wait_for_subscribers(app, 0)
        # Published while the client was away: two for it, one its filter leaves out.
        missed = [make_event(app="litho"), make_event(app="etch"), make_event(app="litho")]
        await http.post("/v1/ingest/managed", content=encode_array(missed))
        headers = {"Last-Event-ID": last_id}
        async with subscribe(http, "/v1/stream?app=litho", headers) as frames:
            got = [(await next_data(frames))["id"], (await next_data(frames))["id"]]
            assert got == [str(missed[0].event_id), str(missed[2].event_id)]
        async with subscribe(http, "/v1/stream", {"Last-Event-ID": "forgotten"}) as frames:
            notice = await asyncio.wait_for(frames.get(), 5)
            while "comment" not in notice:  # the retry: field comes first
                notice = await asyncio.wait_for(frames.get(), 5)
            assert "last event id 'forgotten' is not among the 4 most recent" in notice["comment"]


async def test_replay_keeps_only_the_most_recent_events(make_event):
    hub = Broadcaster(replay_size=3, queue_size=2)
    events = [make_event() for _ in range(5)]
    hub.publish(events)
    assert [event for event, _text in hub.recent] == events[2:]
    sub = hub.subscribe(last_event_id=str(events[2].event_id))
    assert sub.dropped == 0
    assert len(sub.queue) == 2
    sub = hub.subscribe(last_event_id=str(events[1].event_id))  # fell out of the window
    assert not sub.queue
    assert b"may be missing" in sub.notice


async def test_wire_events_are_sent_as_the_text_they_arrived_as(make_event):
    """The gateway publishes the fast decoder's events with their lines: no Event is built,
    the line goes out as it is, unless it holds a CR (an SSE line break): then re-encoded."""
    events = [make_event(app="etch"), make_event(app="litho")]
    lines = encode_ndjson(events).splitlines()
    lines[1] = lines[1].replace(b'{"schema_version"', b'{\r"schema_version"')
    batch = read_batch(b"\n".join(lines))
    assert not batch.rejected
    hub = Broadcaster()
    sub = hub.subscribe()
    hub.publish(batch.events, batch.lines)
    first, second = sub.queue
    assert first == b"id: %s\ndata: %s\n\n" % (str(events[0].event_id).encode(), lines[0])
    assert b"\r" not in second
    assert orjson.loads(second.split(b"data: ")[1]) == orjson.loads(encode_ndjson([events[1]]))
    again = hub.subscribe(last_event_id=str(events[0].event_id))
    assert list(again.queue) == [second]
