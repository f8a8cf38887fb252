"""The scenario files and their schema: every shipped scenario is valid, malformed ones are not."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from wafermon_conformance import paths, scenarios

FILES = sorted(paths.SCENARIOS.glob("*.json"))


def test_the_scenario_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(scenarios.scenario_schema())


def test_the_suite_covers_what_the_protocol_promises():
    names = {f.stem for f in FILES}
    for required in [
        "job_started_finished",
        "job_with_subjobs_and_progress",
        "job_failed_with_error",
        "metadata_unicode_and_nesting",
        "metadata_size_cap",
        "emit_batch_wire_form",
        "direct_mode_filesystem",
        "sidecar_down_at_start_then_up",
        "sidecar_503_retry_after",
        "config_from_environment",
        "flush_on_close",
    ]:
        assert required in names
    assert len([n for n in names if n.startswith("invalid_config_")]) >= 8


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_every_scenario_is_valid(path):
    data = json.loads(path.read_text(encoding="utf-8"))
    assert scenarios.problems(data, path.stem) == []


def valid() -> dict:
    return json.loads((paths.SCENARIOS / "job_started_finished.json").read_text())


def invalid_config() -> dict:
    return json.loads((paths.SCENARIOS / "invalid_config_mode_misspelt.json").read_text())


def broken(change) -> dict:
    data = copy.deepcopy(valid())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("expect"), "$: 'expect' is a required property"),
        (lambda d: d.update(wire="kafka"), "$.wire: 'kafka' is not one of ['sidecar', 'files']"),
        (
            lambda d: d["steps"].insert(0, {"op": "teleport"}),
            "$.steps[0].op: 'teleport' is not one of",
        ),
        (lambda d: d["steps"][1].pop("handle"), "$.steps[1]: 'handle' is a required property"),
        (
            lambda d: d["steps"][1].update(entity_type="batch"),
            "$.steps[1].entity_type: 'batch' is not one of ['job', 'subjob']",
        ),
        (
            lambda d: d["steps"][0]["env"].update(MODE="direct"),
            "$.steps[0].env: 'MODE' does not match '^WAFERMON_[A-Z_]+$'",
        ),
        (
            lambda d: d["expect"]["events"][0].update(kindd="started"),
            "$.expect.events[0]: 'kindd' is not one of",
        ),
        (
            lambda d: d["expect"]["events"][0].update(site_id={"$regexp": "fab"}),
            "$.expect.events[0].site_id: {'$regexp': 'fab'} is not valid under any of the given schemas",
        ),
        (
            lambda d: d["steps"].insert(0, {"op": "sidecar_refuse", "status": 503}),
            "$.steps[0]: 'requests' is a required property",
        ),
    ],
    ids=[
        "no-expect",
        "unknown-wire",
        "unknown-op",
        "start-without-handle",
        "bad-entity-type",
        "env-not-wafermon",
        "unknown-event-field",
        "unknown-matcher",
        "refuse-without-count",
    ],
)
def test_a_malformed_scenario_is_rejected_naming_the_path(change, expected):
    found = scenarios.problems(broken(change), "job_started_finished")
    assert any(p.startswith(expected) for p in found), found


def test_a_malformed_matcher_is_rejected_beyond_the_schema():
    data = broken(
        lambda d: d["expect"]["events"][0].update(site_id={"$absent": True, "$any": True})
    )
    assert scenarios.problems(data, "x") == [
        "$.expect.events[0].site_id: $absent cannot be combined with other matchers"
    ]
    data = broken(lambda d: d["expect"]["events"][0].update(site_id={"$regex": "(fab"}))
    assert scenarios.problems(data, "x")[0].startswith("$.expect.events[0].site_id.$regex: ")


def test_an_invalid_input_scenario_names_its_one_fault():
    data = invalid_config()
    assert scenarios.problems(data, "invalid_config_mode_misspelt") == []
    assert scenarios.problems(data, "invalid_config_queue_size_misspelt") == [
        "$.fault: the name must start with invalid_config_mode_ (its variable)"
    ]
    no_fault = copy.deepcopy(data)
    del no_fault["fault"]
    assert scenarios.problems(no_fault, "invalid_config_mode_misspelt") == [
        "$: a scenario named invalid_* must say its one fault in 'fault'"
    ]
    other_value = copy.deepcopy(data)
    other_value["steps"][0]["env"]["WAFERMON_MODE"] = "sidecarr"
    assert scenarios.problems(other_value, "invalid_config_mode_misspelt") == [
        "$.fault: the failing init must set WAFERMON_MODE to 'sidcar'"
    ]
    vague = copy.deepcopy(data)
    vague["steps"][0]["expect"]["error"]["message"] = {"$any": True}
    assert scenarios.problems(vague, "invalid_config_mode_misspelt") == [
        "$.steps: the failing init must expect an error message naming WAFERMON_MODE"
    ]


def test_an_invalid_event_scenario_hands_over_exactly_one_event_bad_in_its_field():
    data = json.loads((paths.SCENARIOS / "invalid_event_kind_misspelt.json").read_text())
    assert scenarios.problems(data, "invalid_event_kind_misspelt") == []
    two_faults = copy.deepcopy(data)
    two_faults["steps"][1]["events"][0]["kind"] = "begun"
    assert scenarios.problems(two_faults, "invalid_event_kind_misspelt") == [
        "$.steps: 2 invalid events are handed to the SDK, expected 1"
    ]
    other_field = copy.deepcopy(data)
    other_field["steps"][1]["events"][1]["kind"] = "finished"
    other_field["steps"][1]["events"][1]["site_id"] = "fab 1"
    assert scenarios.problems(other_field, "invalid_event_kind_misspelt") == [
        "$.fault: the invalid event's faults are at ['$.site_id'], not $.kind"
    ]


def test_load_all_names_every_malformed_file(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(valid()))
    (tmp_path / "bad.json").write_text(json.dumps(broken(lambda d: d.pop("steps"))))
    (tmp_path / "torn.json").write_text("{")
    with pytest.raises(scenarios.ScenarioError) as info:
        scenarios.load_all(tmp_path)
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"{tmp_path / 'bad.json'}: $: 'steps' is a required property")
    assert lines[1].startswith(f"{tmp_path / 'torn.json'}: cannot read: ")
