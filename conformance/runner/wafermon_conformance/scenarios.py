"""Scenario files: loading, and checking them against conformance/scenario.schema.json.

A scenario is data only (JSON); its name is its file name without ``.json``. A malformed
scenario is the suite's bug, not an SDK's: ``load`` raises ``ScenarioError`` naming the file
and the JSON path of every fault, and the runner refuses to start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import jsonschema

from wafermon import decode_batch

from . import paths
from .matcher import MatcherError, check_expectation

DRIVER_OPS = frozenset(
    {"init", "start", "progress", "finish", "fail", "emit_event", "emit_batch", "flush"}
    | {"close", "stats"}
)
RUNNER_OPS = frozenset({"sidecar_down", "sidecar_up", "sidecar_refuse", "sleep", "wait_for_events"})
INVALID_PREFIX = "invalid_"


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file and each fault's path."""


@attrs.frozen
class Scenario:
    name: str
    path: Path
    data: dict[str, Any]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.data["steps"]

    @property
    def wire(self) -> str:
        return self.data["wire"]

    @property
    def expect(self) -> dict[str, Any]:
        return self.data["expect"]


def scenario_schema() -> dict[str, Any]:
    return json.loads(paths.SCENARIO_SCHEMA.read_text(encoding="utf-8"))


def validator() -> jsonschema.Draft202012Validator:
    schema = scenario_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(
    data: Any, name: str, check: jsonschema.Draft202012Validator | None = None
) -> list[str]:
    """Every fault of one scenario document: schema errors, bad matchers, naming rules."""
    check = check or validator()
    found = [
        f"{error.json_path}: {error.message}"
        for error in sorted(check.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
    if found:
        return found
    for i, event in enumerate(data["expect"]["events"]):
        try:
            check_expectation(event, f"$.expect.events[{i}]")
        except MatcherError as exc:
            found.append(str(exc))
    for i, step in enumerate(data["steps"]):
        if "expect" in step:
            try:
                check_expectation(step["expect"], f"$.steps[{i}].expect")
            except MatcherError as exc:
                found.append(str(exc))
    fault = data.get("fault")
    if name.startswith(INVALID_PREFIX) and fault is None:
        found.append(f"$: a scenario named {INVALID_PREFIX}* must say its one fault in 'fault'")
    if fault is not None:
        found.extend(_fault_problems(data, name, fault))
    return found


def _fault_problems(data: dict[str, Any], name: str, fault: dict[str, Any]) -> list[str]:
    """An invalid-input scenario tests exactly one fault and is named after it."""
    if "field" in fault:
        return _event_fault_problems(data, name, fault)
    found = []
    variable = fault["variable"]
    slug = variable.removeprefix("WAFERMON_").lower()
    if not name.startswith(f"{INVALID_PREFIX}config_{slug}_"):
        found.append(f"$.fault: the name must start with invalid_config_{slug}_ (its variable)")
    inits = [s for s in data["steps"] if s["op"] == "init"]
    refused = [s for s in inits if s.get("expect", {}).get("ok") is False]
    if len(refused) != 1:
        found.append("$.steps: an invalid-config scenario has exactly one init expected to fail")
        return found
    env = refused[0]["env"]
    if env.get(variable) != fault["value"]:
        found.append(f"$.fault: the failing init must set {variable} to {fault['value']!r}")
    message = refused[0]["expect"].get("error", {}).get("message")
    if variable not in json.dumps(message):
        found.append(f"$.steps: the failing init must expect an error message naming {variable}")
    return found


def _event_fault_problems(data: dict[str, Any], name: str, fault: dict[str, Any]) -> list[str]:
    """Exactly one event handed to the SDK is invalid, and only at ``fault.field``."""
    found = []
    field = fault["field"]
    slug = field.replace(".", "_")
    if not name.startswith(f"{INVALID_PREFIX}event_{slug}_"):
        found.append(f"$.fault: the name must start with invalid_event_{slug}_ (its field)")
    handed = [e for s in data["steps"] if s["op"] == "emit_event" for e in [s["event"]]]
    handed += [e for s in data["steps"] if s["op"] == "emit_batch" for e in s["events"]]
    rejected = [r for e in handed for r in decode_batch(json.dumps(e).encode()).rejected]
    if len(rejected) != 1:
        found.append(f"$.steps: {len(rejected)} invalid events are handed to the SDK, expected 1")
        return found
    paths = {p.path for p in rejected[0].problems}
    if paths != {f"$.{field}"}:
        found.append(f"$.fault: the invalid event's faults are at {sorted(paths)}, not $.{field}")
    return found


def load_file(path: Path, check: jsonschema.Draft202012Validator | None = None) -> Scenario:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    found = problems(data, path.stem, check)
    if found:
        raise ScenarioError(f"{path}: " + "; ".join(found))
    return Scenario(path.stem, path, data)


def load_all(folder: Path = paths.SCENARIOS) -> list[Scenario]:
    """Every scenario in ``folder``, by name; ScenarioError listing every malformed file."""
    check = validator()
    loaded, errors = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            loaded.append(load_file(path, check))
        except ScenarioError as exc:
            errors.append(str(exc))
    if errors:
        raise ScenarioError("\n".join(errors))
    if not loaded:
        raise ScenarioError(f"{folder}: no scenario files (*.json)")
    return loaded
