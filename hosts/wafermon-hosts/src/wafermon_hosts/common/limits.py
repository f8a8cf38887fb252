"""Request bodies are read with hard caps, so no client can make a host hold unbounded input
or hold up other clients.

- Bytes: the declared Content-Length is checked before reading anything; a chunked body (no
  length) is counted while it streams and refused the moment it passes the cap. A host-wide
  ``ByteBudget`` bounds the body bytes held by all requests at once.
- Work: an ingest body is decoded one slice at a time (``wafermon.wire.BatchReader``), the
  event loop running other requests between slices, and items are counted as they are read, so
  a body over the event cap is refused after at most one slice past the cap, never decoded whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request

from wafermon import BatchDecodeError, Problem
from wafermon.wire import BatchReader, TooManyEvents, WireBatch

from .errors import ApiError

#: Seconds a request waits for room in the host's byte budget before it is answered 503.
BUDGET_WAIT_S = 10.0
RETRY_AFTER_S = 5
#: Bytes a chunked body takes from the budget at a time.
CLAIM_STEP = 256 * 1024
#: A body refused as too large is still read and dropped up to this many more bytes, for at
#: most DISCARD_S seconds: a client writes its whole body before it reads the answer, and
#: closing on unread bytes resets the connection, losing the 413 on its way to the client.
DISCARD_BYTES = 1024 * 1024
DISCARD_S = 2.0


class ByteBudget:
    """Body bytes that all requests of a host may hold at once.

    A request takes bytes as it reads its body and gives them back when it has been answered.
    One request may always proceed alone (a body up to the size cap), so the budget only ever
    makes concurrent requests wait, and a request that waits too long gets 503 + Retry-After.
    """

    def __init__(self, limit: int, *, wait_s: float = BUDGET_WAIT_S) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self.used = 0
        self.waiting = 0  # requests waiting for room: only they need waking
        self._room = asyncio.Condition()

    def claim(self) -> Claim:
        """``async with budget.claim() as claim``: the bytes taken are given back at the end."""
        return Claim(self)


class Claim:
    """One request's share of a ByteBudget (an async context manager, not a generator: it
    is entered on every ingest request)."""

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.held = 0

    async def __aenter__(self) -> Claim:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    async def take(self, size: int) -> None:
        budget = self.budget
        if budget.used + size <= budget.limit:  # room now: no wait, so no lock (one loop)
            budget.used += size
            self.held += size
            return
        async with budget._room:
            budget.waiting += 1
            try:
                async with asyncio.timeout(budget.wait_s):
                    await budget._room.wait_for(
                        lambda: budget.used + size <= budget.limit or budget.used == self.held
                    )
            except TimeoutError:
                raise ApiError(
                    503,
                    "the host is busy reading other requests' bodies; retry later",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                ) from None
            finally:
                budget.waiting -= 1
            budget.used += size
            self.held += size

    async def release(self) -> None:
        budget = self.budget
        budget.used -= self.held
        self.held = 0
        if budget.waiting:
            async with budget._room:
                budget._room.notify_all()


#: Content types the ingest endpoints read; a missing Content-Type is read the same way.
EVENT_CONTENT_TYPES = ("application/json", "application/x-ndjson", "application/ndjson")


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body is larger than the limit of {limit} bytes")


async def read_body(request: Request, limit: int, claim: Claim | None = None) -> bytes:
    """The whole body, or ApiError 413 as soon as it is known to exceed ``limit`` bytes.

    With a ``claim``, the body's bytes are taken from the host's budget before they are read.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, f"invalid Content-Length header: {declared!r}")
        if int(declared) > limit:
            if int(declared) <= limit + DISCARD_BYTES:
                await _discard(request.stream())
            raise too_large(limit)
        if claim is not None:
            await claim.take(int(declared))
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:  # request.receive, not request.stream(): no async generator per request
        message = await request.receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk, more = message.get("body", b""), message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            await _discard(request.stream())
            raise too_large(limit)
        if claim is not None and declared is None and size > claim.held:
            await claim.take(max(size - claim.held, CLAIM_STEP))  # in steps: few waits
        chunks.append(chunk)
    return b"".join(chunks)


async def _discard(stream: AsyncIterator[bytes]) -> None:
    """Read and drop the rest of a refused body, within DISCARD_BYTES and DISCARD_S."""
    dropped = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DISCARD_S):
            async for chunk in stream:
                dropped += len(chunk)
                if dropped > DISCARD_BYTES:
                    return


def media_type(request: Request) -> str:
    """The Content-Type without parameters, lower-cased; "" when the header is missing."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def ingest_body(
    request: Request, budget: ByteBudget, settings: Any, *, keep_events: bool = True
) -> IngestBody:
    """``async with ingest_body(...) as batch``: an ingest request's validated body, its
    bytes held in ``budget`` until the block ends.

    ``settings`` is the host's (``max_body_bytes``, ``max_batch_events``); ``keep_events`` as
    ``wafermon.wire.WireBatch`` says.
    """
    return IngestBody(request, budget, settings, keep_events)


class IngestBody:
    """What ``ingest_body`` returns (a class rather than a generator: one per request)."""

    def __init__(self, request: Request, budget: ByteBudget, settings: Any, keep: bool) -> None:
        self.request = request
        self.claim = Claim(budget)
        self.settings = settings
        self.keep_events = keep

    async def __aenter__(self) -> WireBatch:
        try:
            return await read_event_batch(
                self.request,
                max_bytes=self.settings.max_body_bytes,
                max_events=self.settings.max_batch_events,
                claim=self.claim,
                keep_events=self.keep_events,
            )
        except BaseException:
            await self.claim.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.claim.release()


async def read_event_batch(
    request: Request,
    *,
    max_bytes: int,
    max_events: int,
    claim: Claim | None = None,
    keep_events: bool = True,
) -> WireBatch:
    """An ingest request's body, validated: accepted events with their JSON, rejected ones.

    ApiError 415 for another Content-Type, 413 above ``max_bytes``, 400 when the body is not an
    event, a JSON array or NDJSON, 422 as soon as it is seen to hold more than ``max_events``.
    """
    kind = media_type(request)
    if kind and kind not in EVENT_CONTENT_TYPES:
        send = " or ".join(EVENT_CONTENT_TYPES)
        raise ApiError(415, f"unsupported Content-Type {kind!r}; send {send}")
    body = await read_body(request, max_bytes, claim)
    reader = BatchReader(body, max_events, keep_events=keep_events)
    try:
        if len(body) <= reader.SLICE_BYTES:  # one slice: no one to let in before it is done
            reader.read_all()
        else:
            for _ in reader.steps():
                await asyncio.sleep(0)  # let other requests run between slices
    except BatchDecodeError as exc:
        raise ApiError(
            400, "the body is not an event, a JSON array or NDJSON", exc.problems
        ) from None
    except TooManyEvents as exc:
        message = (
            f"the body holds more than the limit of {max_events} events "
            f"(counted {exc.seen} before stopping); split it"
        )
        raise ApiError(422, message, [Problem("$", message)]) from None
    return reader.batch
