"""Decoding is strict, reports JSON paths, and never loses the good events of a batch."""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

import orjson
import pytest

from wafermon import (
    BatchDecodeError,
    EventDecodeError,
    decode_batch,
    decode_event,
    encode_array,
    encode_event,
    encode_ndjson,
    to_json_dict,
)
from wafermon.events import METADATA_MAX_BYTES


def problems_of(obj: Any) -> dict[str, str]:
    with pytest.raises(EventDecodeError) as info:
        decode_event(orjson.dumps(obj))
    return {p.path: p.message for p in info.value.problems}


def test_valid_event_decodes_to_typed_fields(valid):
    event = decode_event(orjson.dumps(valid))
    assert event.event_id == UUID(valid["event_id"])
    assert event.time.isoformat() == "2026-11-28T09:30:00.123456+00:00"
    assert event.entity.parent_id == "j-1"
    assert event.metrics.progress == 0.5
    assert event.metadata["nested"] == {"tool": ["etch", 7]}


def test_encoding_is_the_wire_format(valid):
    assert to_json_dict(decode_event(orjson.dumps(valid))) == valid


def test_minimal_event_omits_absent_fields(valid):
    minimal = {k: valid[k] for k in ("schema_version", "event_id", "kind", "time", "site_id")}
    minimal |= {"app": {"name": "x"}, "entity": {"type": "job", "id": "j"}}
    assert to_json_dict(decode_event(orjson.dumps(minimal))) == minimal


@pytest.mark.parametrize(
    ("mutate", "path", "reason"),
    [
        (lambda e: e.pop("event_id"), "$.event_id", "required field missing"),
        (lambda e: e["app"].pop("name"), "$.app.name", "required field missing"),
        (lambda e: e.update(kind="exploded"), "$.kind", "must be one of"),
        (lambda e: e.update(event_id="not-a-uuid"), "$.event_id", "UUID"),
        (
            lambda e: e.update(event_id="6F1C2D3E-4B5A-4C6D-8E7F-0A1B2C3D4E5F"),
            "$.event_id",
            "lower",
        ),
        (lambda e: e.update(time="2026-11-28 09:30:00"), "$.time", "RFC 3339"),
        (lambda e: e.update(time="2026-11-28T09:30:00+01:00"), "$.time", "RFC 3339"),
        (lambda e: e.update(time="2026-02-30T09:30:00Z"), "$.time", "not a valid date"),
        (lambda e: e.update(site_id="../../etc"), "$.site_id", "letters, digits"),
        (lambda e: e["app"].update(name=7), "$.app.name", "expected a string, got a number"),
        (
            lambda e: e["metrics"].update(duration_s="1.5"),
            "$.metrics.duration_s",
            "expected a number",
        ),
        (
            lambda e: e["metrics"].update(cpu_user_s=True),
            "$.metrics.cpu_user_s",
            "expected a number",
        ),
        (lambda e: e["metrics"].update(mem_max_mb=-1), "$.metrics.mem_max_mb", ">= 0"),
        (lambda e: e["metrics"].update(progress=1.5), "$.metrics.progress", "between 0 and 1"),
        (lambda e: e["entity"].update(type="batch"), "$.entity.type", "must be one of"),
        (lambda e: e["entity"].pop("parent_id"), "$.entity.parent_id", "required when type"),
        (lambda e: e["entity"].update(id=""), "$.entity.id", "must not be empty"),
        (lambda e: e.update(schema_version=2), "$.schema_version", "unsupported version 2"),
        (lambda e: e.update(colour="red"), "$.colour", "unknown field"),
        (lambda e: e["source"].update(pid=-3), "$.source.pid", "integer >= 0"),
        (lambda e: e.update(metadata=[1, 2]), "$.metadata", "expected an object"),
        (lambda e: e.update(entity="job-1"), "$.entity", "expected an object, got a string"),
        (lambda e: e.update(kind="failed"), "$.error", "required when kind is 'failed'"),
        (lambda e: e.update(error={"type": "X", "message": "m"}), "$.error", "only allowed"),
        (lambda e: e.update(metadata={"blob": "x" * METADATA_MAX_BYTES}), "$.metadata", "cap"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_fault_is_named_by_its_json_path(valid, mutate, path, reason):
    mutate(valid)
    found = problems_of(valid)
    assert path in found, found
    assert reason in found[path]


def test_every_structural_fault_is_reported_at_once(valid):
    del valid["event_id"]
    valid["app"]["colour"] = "red"
    valid["metrics"]["duration_s"] = "slow"
    assert {"$.event_id", "$.app.colour", "$.metrics.duration_s"} <= problems_of(valid).keys()


def test_batch_keeps_good_events_and_reports_bad_ones_by_index(valid):
    good = [dict(valid, event_id=f"00000000-0000-4000-8000-00000000000{i}") for i in range(3)]
    bad_kind = dict(
        copy.deepcopy(valid), kind="nope", event_id="00000000-0000-4000-8000-0000000000aa"
    )
    body = orjson.dumps([good[0], bad_kind, good[1], 42, good[2]])
    batch = decode_batch(body)
    assert [str(e.event_id)[-1] for e in batch.events] == ["0", "1", "2"]
    assert batch.indexes == [0, 2, 4]
    assert [(r.index, r.event_id) for r in batch.rejected] == [
        (1, "00000000-0000-4000-8000-0000000000aa"),
        (3, None),
    ]
    assert batch.rejected[0].problems[0].path == "$.kind"
    assert str(batch.rejected[1]) == "event 3: $: expected an object, got a number"


def test_ndjson_batch_with_an_unparsable_line(valid):
    lines = [orjson.dumps(valid), b'{"event_id": oops', b"", orjson.dumps(valid)]
    batch = decode_batch(b"\n".join(lines) + b"\n")
    assert len(batch.events) == 2
    assert batch.indexes == [0, 2]  # blank lines are not events
    assert batch.rejected[0].index == 1
    assert "not valid JSON" in batch.rejected[0].problems[0].message


def test_invalid_utf8_line_is_rejected_alone(valid):
    batch = decode_batch(orjson.dumps(valid) + b'\n{"site_id": "\xff\xfe"}\n')
    assert len(batch.events) == 1
    assert batch.rejected[0].index == 1


def test_single_pretty_printed_object_is_one_event(valid):
    batch = decode_batch(orjson.dumps(valid, option=orjson.OPT_INDENT_2))
    assert len(batch.events) == 1
    assert batch.ok


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"   \n", "empty body"),
        (b"[{", "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
    ],
)
def test_unreadable_body_is_one_clear_error(body, reason):
    with pytest.raises(BatchDecodeError, match=reason):
        decode_batch(body)


def test_encoders_round_trip_through_decode_batch(valid):
    events = decode_batch(orjson.dumps([valid, dict(valid, event_id=str(UUID(int=5)))])).events
    assert decode_batch(encode_ndjson(events)).events == events
    assert decode_batch(encode_array(events)).events == events
    assert encode_ndjson(events).count(b"\n") == 2
    assert decode_event(encode_event(events[0])) == events[0]
