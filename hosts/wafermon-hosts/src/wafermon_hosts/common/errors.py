"""JSON everywhere: error bodies are ``{"error": "...", "problems": [{"path", "message"}]}``.

Handlers raise ``ApiError``; Starlette's own HTTP errors (404 for an unknown path, 405) and
unexpected exceptions (see ``observe``) get the same shape, so a client parses one format
whatever failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from wafermon import Problem, strip_credentials


class JSONResponse(Response):
    """orjson-rendered JSON: UUIDs and datetimes (as RFC 3339 ``Z``) encode natively."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


class ApiError(Exception):
    """An error answer: status, a sentence for people and, optionally, located problems."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: Iterable[Problem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = list(problems)
        self.headers = dict(headers or {})


def bad_parameter(name: str, message: str) -> ApiError:
    """400 for one query parameter; its name is the problem's path."""
    return ApiError(400, f"invalid parameter {name!r}: {message}", [Problem(name, message)])


def error_response(
    status: int,
    message: str,
    problems: Iterable[Problem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    # Every error answer passes here: URL credentials in a message never reach a client.
    body: dict[str, Any] = {"error": strip_credentials(message)}
    problems = list(problems)
    if problems:
        body["problems"] = [
            {"path": p.path, "message": strip_credentials(p.message)} for p in problems
        ]
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.problems, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


#: Unexpected exceptions are answered (and logged) by ``observe.RequestObserver``.
EXCEPTION_HANDLERS = {ApiError: _api_error, HTTPException: _http_error}
