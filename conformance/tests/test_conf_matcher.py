"""The matcher vocabulary: each matcher accepts what it should and says why it rejects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wafermon_conformance.matcher import (
    Context,
    MatcherError,
    check_expectation,
    match,
    match_partial,
)

V4 = "0b7e1f5c-3c1a-4d2e-9f60-2a8c5e4b7d10"
V1 = "0b7e1f5c-3c1a-1d2e-9f60-2a8c5e4b7d10"


def ok(expected, actual, context=None):
    return match(expected, actual, context or Context()) is None


def why(expected, actual, context=None):
    return match(expected, actual, context or Context())


def test_plain_values_match_themselves_strictly():
    assert ok("fab1", "fab1")
    assert why("fab1", "fab2") == '$: expected "fab1", got "fab2"'
    assert ok(1, 1.0)
    assert why(1, True) == "$: expected 1, got true"
    assert why(True, 1) == "$: expected true, got 1"
    assert ok([1, "a"], [1, "a"])
    assert why([1], [1, 2]) == "$: expected 1 items, got 2"


def test_objects_match_exactly_and_null_counts_as_missing():
    assert ok({"a": 1}, {"a": 1, "b": None})
    assert ok({"a": 1, "b": None}, {"a": 1})
    assert why({"a": 1}, {"a": 1, "b": 2}) == "$.b: not expected (value 2)"
    assert why({"a": 1, "c": 3}, {"a": 1}) == "$.c: missing"
    assert why({"n": {"x": 1}}, {"n": {"x": 2}}) == "$.n.x: expected 1, got 2"


def test_partial_optional_and_absent():
    assert ok({"$partial": {"a": 1}}, {"a": 1, "b": 2})
    assert why({"$partial": {"a": 1}}, {"b": 2}) == "$.a: missing"
    assert ok({"a": {"$optional": 1}}, {})
    assert ok({"a": {"$optional": 1}}, {"a": None})
    assert why({"a": {"$optional": 1}}, {"a": 2}) == "$.a: expected 1, got 2"
    assert ok({"a": {"$absent": True}}, {"a": None})
    assert why({"a": {"$absent": True}}, {"a": 0}) == "$.a: expected no value, got 0"
    assert match_partial({"kind": "started"}, {"kind": "started", "x": 1}, Context()) is None


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("string", "x", 1),
        ("number", 1.5, "1.5"),
        ("integer", 3, 3.5),
        ("boolean", False, 0),
        ("object", {}, []),
        ("array", [], {}),
        ("random_uuid", V4, V1),
        ("random_uuid", V4, V4.upper()),
        (
            "random_uuid",
            "0193a5c4-7e2b-7c1d-9f00-1a2b3c4d5e6f",
            "0193a5c4-7e2b-6c1d-9f00-1a2b3c4d5e6f",
        ),
        ("time", "2026-11-28T09:30:00.123456Z", "2026-11-28T09:30:00.1234567Z"),
        ("time", "2026-11-28T09:30:00Z", "2026-11-28T09:30:00+00:00"),
    ],
)
def test_types(kind, good, bad):
    assert ok({"$type": kind}, good)
    assert why({"$type": kind}, bad).startswith(f"$: expected {kind}, got ")


def test_a_time_must_fall_inside_the_run():
    now = datetime.now(UTC)
    context = Context(window=(now, now + timedelta(seconds=2)))
    inside = (now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert ok({"$type": "time"}, inside, context)
    assert "outside the scenario's run" in why({"$type": "time"}, "2020-01-01T00:00:00Z", context)


def test_time_compares_instants():
    assert ok({"$time": "2026-11-28T08:00:01.5Z"}, "2026-11-28T08:00:01.500000Z")
    assert why({"$time": "2026-11-28T08:00:01.5Z"}, "2026-11-28T08:00:01.499999Z") == (
        "$: expected the instant 2026-11-28T08:00:01.5Z, got 2026-11-28T08:00:01.499999Z"
    )


def test_numbers_strings_and_presence():
    assert ok({"$min": 0, "$max": 1}, 0.5)
    assert why({"$min": 0}, -0.1) == "$: expected at least 0, got -0.1"
    assert why({"$max": 1}, 1.5) == "$: expected at most 1, got 1.5"
    assert why({"$min": 0}, True) == "$: expected a number, got true"
    assert ok({"$regex": "^WAFERMON_MODE"}, "WAFERMON_MODE: bad")
    assert why({"$regex": "^WAFERMON_MODE"}, "mode: bad").startswith(
        "$: expected a string matching"
    )
    assert ok({"$contains": "sidcar"}, "got 'sidcar'")
    assert why({"$contains": "x"}, 5).startswith("$: expected a string containing 'x'")
    assert ok({"$any": True}, 0)
    assert why({"$any": True}, None) == "$: expected a value, got null"


def test_variables_bind_once_then_must_agree():
    context = Context()
    expected = [{"id": {"$var": "job"}}, {"parent_id": {"$var": "job"}}]
    assert match(expected, [{"id": "a"}, {"parent_id": "a"}], context) is None
    assert context.variables == {"job": "a"}
    assert why(expected, [{"id": "a"}, {"parent_id": "b"}]) == (
        '$[1].parent_id: expected $job = "a", got "b"'
    )
    assert why({"$var": "sdk"}, "c", Context({"sdk": "python"})) == (
        '$: expected $sdk = "python", got "c"'
    )


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        ({"a": {"$nope": 1}}, "$.a: unknown matcher $nope"),
        ({"a": {"$optional": 1, "$type": "string"}}, "$.a: $optional cannot be combined"),
        ({"$type": "uuid7"}, "$.$type: must be one of"),
        ({"a": {"$regex": "("}}, "$.a.$regex: "),
        ({"a": {"$time": "yesterday"}}, "$.a.$time: expected an RFC 3339 UTC time"),
        ({"a": {"$var": "x", "b": 1}}, "$.a: mixes $ matcher keys with plain keys"),
        ([{"a": {"$partial": {"$type": "string"}}}], "$[0].a.$partial: expected an object"),
    ],
)
def test_malformed_expectations_are_named(expectation, message):
    with pytest.raises(MatcherError) as info:
        check_expectation(expectation)
    assert str(info.value).startswith(message)
