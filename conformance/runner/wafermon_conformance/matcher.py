"""The matcher: does a JSON value (a wire event, a driver response) match an expectation?

Expectations are JSON. A plain value matches itself; a JSON object whose keys all start with
``$`` is a **matcher**, and all of its keys must hold. The vocabulary (also in
docs/conformance.md and the scenario schema):

=====================  ==============================================================
``{"$type": T}``       T is ``string``, ``number``, ``integer``, ``boolean``, ``object``,
                       ``array``, ``random_uuid`` (lower-case UUID text of version 4, or
                       7: time-ordered random) or ``time``
                       (RFC 3339 UTC with ``Z``, at most 6 fraction digits, inside the
                       scenario's run, with ``TIME_SKEW_S`` of slack)
``{"$min": x}``        a number >= x (``$max``: <= x)
``{"$regex": r}``      a string that ``re.search`` finds r in
``{"$contains": s}``   a string containing s
``{"$time": t}``       a time (as ``$type: time``, without the run window) naming the same
                       instant as t: ``...:01.5Z`` equals ``...:01.500000Z``
``{"$var": name}``     the first match binds name to the value; later ones must equal it
``{"$any": true}``     any value that is present and not null
``{"$absent": true}``  in an object: the key is missing or null
``{"$optional": m}``   in an object: the key is missing or null, or matches m
``{"$partial": o}``    an object holding at least o's keys (matching); others are free
=====================  ==============================================================

Objects match **exactly**: the same keys, where a null value on the actual side counts as a
missing key (the event schema gives them the same meaning). ``$partial`` relaxes that; the
top level of an expected event or response is always partial (the caller passes it wrapped).
Arrays match element by element, same length. ``1`` and ``1.0`` are equal; ``true`` is not 1.

``match`` returns the first mismatch as text naming its JSON path, or None; bindings are made
in a copy of the variables that the caller keeps only on success.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

RANDOM_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
TIME = re.compile(
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:"
    r"[0-5][0-9](\.[0-9]{1,6})?Z$"
)
TIME_SKEW_S = 5.0
TYPES = ("string", "number", "integer", "boolean", "object", "array", "random_uuid", "time")
KEYS = frozenset(
    {"$type", "$min", "$max", "$regex", "$contains", "$time", "$var", "$any", "$absent"}
    | {"$optional", "$partial"}
)
#: Matchers that say something about a key's presence: alone in their matcher object.
ALONE = ("$absent", "$optional", "$partial")


class MatcherError(ValueError):
    """The expectation itself is malformed (a scenario bug, not an SDK failure)."""


@attrs.define
class Context:
    """What matching needs besides the values: variables and the run's time window."""

    variables: dict[str, Any] = attrs.Factory(dict)
    window: tuple[datetime, datetime] | None = None  # UTC


def is_matcher(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def check_expectation(expected: Any, path: str = "$") -> None:
    """Raise MatcherError naming the path of the first malformed matcher in ``expected``."""
    if isinstance(expected, list):
        for i, item in enumerate(expected):
            check_expectation(item, f"{path}[{i}]")
        return
    if not isinstance(expected, dict):
        return
    if not is_matcher(expected):
        if any(k.startswith("$") for k in expected):
            raise MatcherError(f"{path}: mixes $ matcher keys with plain keys")
        for key, value in expected.items():
            check_expectation(value, f"{path}.{key}")
        return
    unknown = set(expected) - KEYS
    if unknown:
        raise MatcherError(f"{path}: unknown matcher {sorted(unknown)[0]} (known: {sorted(KEYS)})")
    alone = [k for k in ALONE if k in expected]
    if alone and len(expected) > 1:
        raise MatcherError(f"{path}: {alone[0]} cannot be combined with other matchers")
    if "$type" in expected and expected["$type"] not in TYPES:
        raise MatcherError(f"{path}.$type: must be one of {', '.join(TYPES)}")
    for key in ("$optional",):
        if key in expected:
            check_expectation(expected[key], f"{path}.{key}")
    if "$partial" in expected:
        if not isinstance(expected["$partial"], dict) or is_matcher(expected["$partial"]):
            raise MatcherError(f"{path}.$partial: expected an object of expected keys")
        for key, value in expected["$partial"].items():
            check_expectation(value, f"{path}.{key}")
    if "$time" in expected and not (
        isinstance(expected["$time"], str) and TIME.fullmatch(expected["$time"])
    ):
        raise MatcherError(
            f"{path}.$time: expected an RFC 3339 UTC time, got {expected['$time']!r}"
        )
    if "$regex" in expected:
        try:
            re.compile(expected["$regex"])
        except (re.error, TypeError) as exc:
            raise MatcherError(f"{path}.$regex: {exc}") from None


def match(expected: Any, actual: Any, context: Context, path: str = "$") -> str | None:
    """None if ``actual`` matches ``expected`` (binding variables in ``context``), else why not.

    On a mismatch ``context.variables`` may hold bindings made before it; callers that
    backtrack pass a copy.
    """
    if is_matcher(expected):
        return _match_matcher(expected, actual, context, path)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {_show(actual)}"
        return _match_object(expected, actual, context, path, exact=True)
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected an array, got {_show(actual)}"
        if len(expected) != len(actual):
            return f"{path}: expected {len(expected)} items, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            why = match(e, a, context, f"{path}[{i}]")
            if why:
                return why
        return None
    if not _equal(expected, actual):
        return f"{path}: expected {_show(expected)}, got {_show(actual)}"
    return None


def match_partial(
    expected: Mapping[str, Any], actual: Any, context: Context, path: str = "$"
) -> str | None:
    """Match the listed keys only (the top level of an expected event or response)."""
    if not isinstance(actual, dict):
        return f"{path}: expected an object, got {_show(actual)}"
    return _match_object(expected, actual, context, path, exact=False)


def _match_object(
    expected: Mapping[str, Any], actual: dict[str, Any], context: Context, path: str, exact: bool
) -> str | None:
    for key, want in expected.items():
        where = f"{path}.{key}"
        present = actual.get(key) is not None
        if is_matcher(want) and "$absent" in want:
            if present:
                return f"{where}: expected no value, got {_show(actual[key])}"
            continue
        if is_matcher(want) and "$optional" in want:
            if present:
                why = match(want["$optional"], actual[key], context, where)
                if why:
                    return why
            continue
        if key not in actual:
            if want is None:
                continue  # null and missing mean the same
            return f"{where}: missing"
        why = match(want, actual[key], context, where)
        if why:
            return why
    if exact:
        extra = sorted(k for k, v in actual.items() if k not in expected and v is not None)
        if extra:
            return f"{path}.{extra[0]}: not expected (value {_show(actual[extra[0]])})"
    return None


def _match_matcher(
    expected: dict[str, Any], actual: Any, context: Context, path: str
) -> str | None:
    if "$partial" in expected:
        return match_partial(expected["$partial"], actual, context, path)
    if "$absent" in expected or "$optional" in expected:
        return f"{path}: $absent/$optional only apply to a key of an object"
    if "$any" in expected and actual is None:
        return f"{path}: expected a value, got null"
    if "$type" in expected:
        why = _check_type(expected["$type"], actual, context)
        if why:
            return f"{path}: {why}"
    if "$min" in expected or "$max" in expected:
        if not _is_number(actual):
            return f"{path}: expected a number, got {_show(actual)}"
        if "$min" in expected and actual < expected["$min"]:
            return f"{path}: expected at least {expected['$min']}, got {actual}"
        if "$max" in expected and actual > expected["$max"]:
            return f"{path}: expected at most {expected['$max']}, got {actual}"
    regex, part = expected.get("$regex"), expected.get("$contains")
    if regex is not None and not (isinstance(actual, str) and re.search(regex, actual)):
        return f"{path}: expected a string matching /{regex}/, got {_show(actual)}"
    if part is not None and not (isinstance(actual, str) and part in actual):
        return f"{path}: expected a string containing {part!r}, got {_show(actual)}"
    if "$time" in expected:
        if not isinstance(actual, str) or not TIME.fullmatch(actual):
            return f"{path}: expected an RFC 3339 UTC time, got {_show(actual)}"
        if datetime.fromisoformat(actual) != datetime.fromisoformat(expected["$time"]):
            return f"{path}: expected the instant {expected['$time']}, got {actual}"
    if "$var" in expected:
        name = expected["$var"]
        if name in context.variables:
            if not _equal(context.variables[name], actual):
                return (
                    f"{path}: expected ${name} = {_show(context.variables[name])}, "
                    f"got {_show(actual)}"
                )
        else:
            context.variables[name] = actual
    return None


def _check_type(kind: str, actual: Any, context: Context) -> str | None:
    ok = {
        "string": isinstance(actual, str),
        "number": _is_number(actual),
        "integer": _is_number(actual) and float(actual).is_integer(),
        "boolean": isinstance(actual, bool),
        "object": isinstance(actual, dict),
        "array": isinstance(actual, list),
        "random_uuid": isinstance(actual, str) and bool(RANDOM_UUID.fullmatch(actual)),
        "time": isinstance(actual, str) and bool(TIME.fullmatch(actual)),
    }[kind]
    if not ok:
        return f"expected {kind}, got {_show(actual)}"
    if kind == "time" and context.window is not None:
        moment = datetime.fromisoformat(actual).astimezone(UTC)
        start, end = context.window
        if not (
            start.timestamp() - TIME_SKEW_S <= moment.timestamp() <= end.timestamp() + TIME_SKEW_S
        ):
            return (
                f"time {actual} is outside the scenario's run ({start:%H:%M:%S}..{end:%H:%M:%S}Z)"
            )
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if _is_number(expected) and _is_number(actual):
        return expected == actual
    if type(expected) is not type(actual):
        return False
    return expected == actual


def _show(value: Any) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
