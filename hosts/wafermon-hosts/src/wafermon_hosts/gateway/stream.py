"""GET /v1/stream: newly accepted events as server-sent events, fanned out in process.

Each subscriber has a bounded queue. Ingest only appends to the queues (never awaits), so a
slow or stalled reader can never slow ingest down: when its queue is full, its oldest frame is
dropped and it is told so with a comment line (``: dropped N events ...``) before the next
frames. A comment every 15 s keeps proxies from closing an idle stream. The fan-out is per
process: behind a load balancer, a stream sees the events ingested by its own gateway.

Reconnecting: every frame's ``id`` is its event_id, and the last ``REPLAY_SIZE`` published
events are kept (as objects; encoded only when replayed). A client reconnecting with the
standard ``Last-Event-ID`` header (browsers' EventSource sends it by itself) first gets the
events published after that one, so a dropped connection loses nothing that is still in the
window; an id outside it is answered with a comment saying events may be missing.

Events published with their JSON text (the gateway's ingest: wire events and the lines they
arrived as) are sent as that text; no object is built for them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

import attrs
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from wafermon import Event
from wafermon.codec import unstructure_event
from wafermon.wire import WireEvent

from ..common.openapi import operation, query_param
from .openapi import COMMON_ERRORS
from .params import Params

HEARTBEAT_S = 15.0
QUEUE_SIZE = 1000
#: Recently published events kept for clients that reconnect with Last-Event-ID.
REPLAY_SIZE = 10_000


@attrs.define(eq=False)
class Subscriber:
    site: str | None
    app: str | None
    queue: deque[bytes]
    wakeup: asyncio.Event = attrs.Factory(asyncio.Event)
    dropped: int = 0
    closed: bool = False
    notice: bytes = b""  # a comment to send before the first frames

    def wants(self, event: Event | WireEvent) -> bool:
        return (self.site is None or event.site_id == self.site) and (
            self.app is None or event.app.name == self.app
        )


class Broadcaster:
    """The in-process fan-out from ingest to every open stream."""

    def __init__(
        self,
        *,
        queue_size: int = QUEUE_SIZE,
        heartbeat_s: float = HEARTBEAT_S,
        replay_size: int = REPLAY_SIZE,
        on_subscribers: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.subscribers: set[Subscriber] = set()
        self.recent: deque[tuple[Event | WireEvent, bytes | None]] = deque(maxlen=replay_size)
        self.closed = False
        self._on_subscribers = on_subscribers
        self._on_dropped = on_dropped

    def subscribe(
        self, *, site: str | None = None, app: str | None = None, last_event_id: str | None = None
    ) -> Subscriber:
        """A new stream; with ``last_event_id``, the events published after it come first."""
        sub = Subscriber(site, app, deque())
        sub.closed = self.closed
        if last_event_id is not None:
            self._replay(sub, last_event_id)
        self.subscribers.add(sub)
        self._on_subscribers(len(self.subscribers))
        return sub

    def _replay(self, sub: Subscriber, last_event_id: str) -> None:
        recent = self.recent
        position = next(
            (
                i
                for i in range(len(recent) - 1, -1, -1)
                if str(recent[i][0].event_id) == last_event_id
            ),
            None,
        )
        if position is None:
            sub.notice = (
                f": last event id {last_event_id[:64]!r} is not among the {len(recent)} most "
                "recent events; events published since it may be missing\n\n"
            ).encode()
            return
        wanted = [(e, line) for e, line in list(recent)[position + 1 :] if sub.wants(e)]
        sub.dropped = max(0, len(wanted) - self.queue_size)
        sub.queue.extend(_frame(e, line) for e, line in wanted[sub.dropped :])

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        self._on_subscribers(len(self.subscribers))

    def publish(
        self,
        events: Sequence[Event | WireEvent],
        lines: Sequence[bytes | None] | None = None,
    ) -> None:
        """Queue events for every subscriber whose filters they pass; never blocks.

        ``lines``: each event's JSON text where known (None: encoded when someone wants it).
        """
        texts = [None] * len(events) if lines is None else lines
        self.recent.extend(zip(events, texts, strict=True))
        if not self.subscribers:
            return
        frames: dict[int, bytes] = {}  # each event is encoded once, and only if someone wants it
        for sub in self.subscribers:
            woken = False
            for i, event in enumerate(events):
                if not sub.wants(event):
                    continue
                if i not in frames:
                    frames[i] = _frame(event, texts[i])
                if len(sub.queue) >= self.queue_size:
                    sub.queue.popleft()
                    sub.dropped += 1
                    self._on_dropped(1)
                sub.queue.append(frames[i])
                woken = True
            if woken:
                sub.wakeup.set()

    def close(self) -> None:
        """End every stream (host shutdown): they finish what is queued, then return."""
        self.closed = True
        for sub in self.subscribers:
            sub.closed = True
            sub.wakeup.set()

    async def frames(self, sub: Subscriber) -> AsyncIterator[bytes]:
        """The byte chunks of one stream: queued frames, drop notices and heartbeats."""
        yield b"retry: 3000\n: connected\n\n" + sub.notice
        while True:
            sub.wakeup.clear()
            if not (sub.queue or sub.dropped or sub.closed):
                try:
                    async with asyncio.timeout(self.heartbeat_s):
                        await sub.wakeup.wait()
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
            chunk = b""
            if sub.dropped:
                chunk = (
                    f": dropped {sub.dropped} events: this client reads slower than "
                    f"events arrive\n\n"
                ).encode()
                sub.dropped = 0
            chunk += b"".join(sub.queue)
            sub.queue.clear()
            if chunk:
                yield chunk
            if sub.closed:
                return


def _frame(event: Event | WireEvent, line: bytes | None = None) -> bytes:
    """One SSE frame; ``line`` (the event's JSON text) is sent as it is when it holds no CR,
    which SSE would read as a line break (JSON allows one between tokens)."""
    if line is None or b"\r" in line:
        if isinstance(event, WireEvent):
            event = event.to_event()
        line = orjson.dumps(unstructure_event(event), option=orjson.OPT_UTC_Z)
    return b"id: %s\ndata: %s\n\n" % (str(event.event_id).encode(), line)


@operation(
    "stream",
    "Server-sent events: each newly accepted event as it is ingested.",
    {
        "200": {
            "description": "text/event-stream; `data:` is a wire event, `id:` its event_id. "
            "Comment lines report heartbeats and dropped events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **COMMON_ERRORS,
    },
    parameters=[
        query_param("site", "Only this site."),
        query_param("app", "Only this app."),
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "description": "Reconnecting: first replay the events stored after this event_id "
            "(from the last 10,000 stored).",
            "schema": {"type": "string"},
        },
    ],
)
async def stream(request: Request) -> Response:
    params = Params(request, {"site", "app"})
    site, app = params.text("site"), params.text("app")
    broadcaster: Broadcaster = request.app.state.gateway.stream
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if request.method == "HEAD":  # a stream never ends: answer the headers only
        return Response(headers=headers, media_type="text/event-stream")

    async def body() -> AsyncIterator[bytes]:
        # Subscribing here, not in the handler, ties the subscription to the generator's
        # lifetime: a client that disconnects cancels it and the finally unsubscribes.
        last_event_id = request.headers.get("last-event-id")
        sub = broadcaster.subscribe(site=site, app=app, last_event_id=last_event_id)
        try:
            async for chunk in broadcaster.frames(sub):
                yield chunk
        finally:
            broadcaster.unsubscribe(sub)

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
