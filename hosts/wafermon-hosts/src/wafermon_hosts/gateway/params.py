"""Query-string parsing with a 400 naming the parameter for every fault.

Unknown parameters are refused rather than ignored: a misspelt filter (``?stauts=failed``)
would otherwise silently return everything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from starlette.requests import Request

from ..common.errors import bad_parameter


class Params:
    """The single-valued query parameters of a request, checked against the allowed names."""

    def __init__(self, request: Request, allowed: set[str]) -> None:
        query = request.query_params
        for name in query:
            if name not in allowed:
                expected = ", ".join(sorted(allowed)) or "none"
                raise bad_parameter(name, f"unknown parameter (expected: {expected})")
            if len(query.getlist(name)) > 1:
                raise bad_parameter(name, "given more than once")
        self.values = dict(query)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value == "":
            raise bad_parameter(name, "must not be empty (leave it out instead)")
        return value

    @overload
    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str: ...
    @overload
    def choice(self, name: str, choices: tuple[str, ...], default: None = None) -> str | None: ...
    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.text(name)
        if value is None:
            return default
        if value not in choices:
            raise bad_parameter(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            raise bad_parameter(name, f"must be an integer from {low} to {high}, got {value!r}")
        return int(value)

    def time(self, name: str) -> datetime | None:
        value = self.text(name)
        return None if value is None else parse_time(value, name)

    def names(self, name: str) -> list[str] | None:
        """A comma-separated list of names, e.g. ``sources=managed,archive``."""
        value = self.text(name)
        if value is None:
            return None
        names = [n.strip() for n in value.split(",")]
        if not all(names):
            raise bad_parameter(name, f"expected comma-separated names, got {value!r}")
        return list(dict.fromkeys(names))


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 time; without an offset it is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_parameter(
            name, f"expected an ISO 8601 time such as 2026-11-28T09:30:00Z, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
