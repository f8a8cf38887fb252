"""Request bodies are read with a hard cap, so no client can make a host hold unbounded input.

The declared Content-Length is checked before reading anything; a chunked body (no length) is
counted while it streams and refused the moment it passes the cap.
"""

from __future__ import annotations

from starlette.requests import Request

from .errors import ApiError


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
