"""Property tests: the attrs model, the codec and the JSON Schema agree on every input.

Integers are kept within 64 bits (orjson's range) and metadata below the byte cap, the one
limit JSON Schema cannot express; both limits have example tests in test_codec.py.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wafermon import (
    App,
    Entity,
    ErrorInfo,
    Event,
    EventDecodeError,
    Metrics,
    Source,
    decode_event,
    encode_event,
    schema_path,
    structure_event,
    to_json_dict,
)
from wafermon.events import SITE_ID_PATTERN

SCHEMA = orjson.loads(schema_path().read_bytes())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(min_size=min_size, max_size=max_size)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


amounts = optional(st.integers(0, 2**53) | st.floats(0, 1e12, allow_nan=False))


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(["started", "progress", "finished", "failed"]))
    entity_type = draw(st.sampled_from(["job", "subjob"]))
    return Event(
        event_id=draw(st.uuids()),
        kind=kind,
        time=draw(st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC))),
        site_id=draw(st.from_regex(SITE_ID_PATTERN, fullmatch=True)),
        app=App(
            name=draw(text(128, 1)),
            version=draw(optional(text(64))),
            app_id=draw(optional(st.uuids())),
        ),
        entity=Entity(
            type=entity_type,
            id=draw(text(256, 1)),
            parent_id=draw(text(256, 1) if entity_type == "subjob" else optional(text(256, 1))),
            business_key=draw(optional(text(256, 1))),
            sub_key=draw(optional(text(256, 1))),
        ),
        metrics=Metrics(
            duration_s=draw(amounts),
            cpu_user_s=draw(amounts),
            cpu_system_s=draw(amounts),
            mem_max_mb=draw(amounts),
            progress=draw(optional(st.floats(0, 1))),
        ),
        metadata=draw(st.dictionaries(st.text(max_size=8), json_values, max_size=5)),
        error=(
            ErrorInfo(
                type=draw(text(256, 1)), message=draw(text(200)), stack=draw(optional(text(200)))
            )
            if kind == "failed"
            else None
        ),
        source=Source(
            host=draw(optional(text(256))),
            pid=draw(optional(st.integers(0, 2**31))),
            sdk=draw(optional(text(64))),
            sdk_version=draw(optional(text(64))),
        ),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_any_valid_event_round_trips_unchanged(event: Event) -> None:
    assert decode_event(encode_event(event)) == event


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_whatever_the_model_builds_the_schema_accepts(event: Event) -> None:
    VALIDATOR.validate(to_json_dict(event))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in an event, not descending into free-form metadata."""
    found = [path] if path else []
    if isinstance(value, dict) and path[-1:] != ("metadata",):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    return found


@st.composite
def mutated_event_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event's JSON, then zero to three edits: drop, replace or add a key."""
    event = copy.deepcopy(to_json_dict(draw(events())))
    interesting = st.sampled_from(
        [
            "started",
            "failed",
            "job",
            "subjob",
            "",
            "x" * 300,
            1,
            1.0,
            0.5,
            -1,
            2,
            True,
            None,
            "2026-02-30T00:00:00Z",
            "2026-11-28T12:00:00.1234567Z",
            "2026-11-28T12:00:00+00:00",
            "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
            "6F1C2D3E-4B5A-4C6D-8E7F-0A1B2C3D4E5F",
            "../../etc",
            {},
            [],
            {"type": "X", "message": "m"},
            {"name": "app"},
        ]
    )
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(event)
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        path = draw(st.sampled_from(paths))
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            # A copy: sampled_from hands out the same dict each time, and putting one object
            # in two places can make the event contain itself.
            parent[path[-1]] = copy.deepcopy(draw(interesting | json_values))
        elif isinstance(parent, dict):
            key = draw(st.sampled_from(["colour", "error", "metrics", "parent_id", "x"]))
            parent[key] = copy.deepcopy(draw(interesting))
    return event


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event_dicts())
def test_model_and_schema_accept_exactly_the_same_inputs(candidate: dict[str, Any]) -> None:
    schema_errors = [e.message for e in VALIDATOR.iter_errors(candidate)]
    try:
        structure_event(candidate)
        model_problems = []
    except EventDecodeError as exc:
        model_problems = [str(p) for p in exc.problems]
    assert bool(schema_errors) == bool(model_problems), (schema_errors, model_problems)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event_dicts())
def test_the_fast_and_the_detailed_converter_build_the_same_event(candidate: dict[str, Any]):
    """The fast path (a written-out Event hook, shared sub-objects) is only an optimisation:
    whatever it builds, the detailed converter builds too, field for field and byte for byte."""
    from wafermon.codec import _detailed, _fast

    try:
        fast = _fast.structure(copy.deepcopy(candidate), Event)
    except Exception:  # noqa: BLE001 - the detailed run explains any fault of the fast one
        return
    detailed = _detailed.structure(copy.deepcopy(candidate), Event)
    assert fast == detailed
    assert encode_event(fast) == encode_event(detailed)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=8))
def test_a_batch_decodes_like_its_events_one_by_one_and_keeps_their_lines(batch: list[Event]):
    from wafermon import decode_batch

    repeated = batch + batch[:2]  # repeated app/entity objects: the interning path
    lines = [encode_event(e) for e in repeated]
    decoded = decode_batch(b"\n".join(b" " + line + b"\t" for line in lines) + b"\n")
    assert decoded.events == [decode_event(line) for line in lines]
    assert decoded.lines == lines  # each entry's JSON text, without the JSON whitespace
