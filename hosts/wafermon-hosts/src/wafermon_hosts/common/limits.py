"""Request bodies are read with a hard cap, so no client can make a host hold unbounded input.

The declared Content-Length is checked before reading anything; a chunked body (no length) is
counted while it streams and refused the moment it passes the cap.
"""

from __future__ import annotations

from starlette.requests import Request

from wafermon import BatchDecodeError, DecodedBatch, Problem, decode_batch

from .errors import ApiError

#: Content types the ingest endpoints read; a missing Content-Type is read the same way.
EVENT_CONTENT_TYPES = ("application/json", "application/x-ndjson", "application/ndjson")


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body is larger than the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or ApiError 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, f"invalid Content-Length header: {declared!r}")
        if int(declared) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    """The Content-Type without parameters, lower-cased; "" when the header is missing."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_event_batch(request: Request, *, max_bytes: int, max_events: int) -> DecodedBatch:
    """An ingest request's body decoded into good and rejected events.

    ApiError 415 for another Content-Type, 413 above ``max_bytes``, 400 when the body is not an
    event, a JSON array or NDJSON, 422 when it holds more than ``max_events`` events.
    """
    kind = media_type(request)
    if kind and kind not in EVENT_CONTENT_TYPES:
        send = " or ".join(EVENT_CONTENT_TYPES)
        raise ApiError(415, f"unsupported Content-Type {kind!r}; send {send}")
    body = await read_body(request, max_bytes)
    try:
        batch = decode_batch(body)
    except BatchDecodeError as exc:
        raise ApiError(
            400, "the body is not an event, a JSON array or NDJSON", exc.problems
        ) from None
    except RecursionError:  # defensive: orjson caps nesting itself, this is a last resort
        raise ApiError(400, "the body is nested too deeply", [Problem("$", "too deep")]) from None
    total = len(batch.events) + len(batch.rejected)
    if total > max_events:
        message = f"the body holds {total} events, more than the limit of {max_events}; split it"
        raise ApiError(422, message, [Problem("$", message)])
    return batch
