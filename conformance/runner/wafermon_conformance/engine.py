"""Performing one scenario with one driver, and judging what reached the wire.

The runner acts (driver requests, recording-sidecar control), then looks only at the wire:
the events the recording sidecar accepted, or the files under the scenario's direct root.
Every event there is judged by

1. the **wire rules** every SDK follows (conformance/PROTOCOL.md, "What the wire must look
   like"): valid against the core JSON Schema and the core codec; no event_id twice; for
   events the SDK made itself (not ones handed to emit_event/emit_batch) a fresh UUID v4, a
   time inside the run, ``source`` naming the driver's process and SDK, lifecycle coherence
   per entity (shared entity and app, started first, nothing after finished/failed, times
   never going back, the metrics each kind carries); requests are NDJSON POSTs to
   /v1/ingest/events with the token as a Bearer header exactly when one is set; after a
   Retry-After answer the next request waits at least that long; direct-mode files sit in
   the filesystem backend's {site_id}/{UTC date} folders; and
2. the scenario's **expectations**: each expected event matched by exactly one wire event
   (matcher.py) and no wire event left over, expected order kept within an entity, and the
   ``requests`` rules.

Every failure is a sentence naming where on the wire it was seen.
"""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import jsonschema

import wafermon
from wafermon import decode_batch

from .driver import DriverFailure, DriverProcess
from .matcher import Context, match_partial
from .recorder import INGEST_PATHS, Recorder, Request
from .scenarios import DRIVER_OPS, Scenario

SEARCH_BUDGET = 200_000  # matching attempts before the assignment search gives up
LIFECYCLE_METRICS = ("duration_s", "cpu_user_s", "cpu_system_s", "mem_max_mb")
NDJSON = "application/x-ndjson"


@attrs.define
class WireEvent:
    """One event as it reached the wire, in arrival order."""

    document: Any  # parsed JSON; None if the line was not JSON
    position: int
    origin: str  # where it was seen: "request 2, event 0" or a file and line
    accepted: bool  # the core codec's verdict
    problems: list[str]
    request: Request | None = None
    file: Path | None = None

    @property
    def event_id(self) -> Any:
        return self.document.get("event_id") if isinstance(self.document, dict) else None

    def label(self) -> str:
        doc = self.document if isinstance(self.document, dict) else {}
        entity = doc.get("entity") if isinstance(doc.get("entity"), dict) else {}
        return f"{doc.get('kind')} of {entity.get('type')} {entity.get('id')} ({self.origin})"


@attrs.define
class Outcome:
    """The result of one scenario for one language."""

    scenario: str
    failures: list[str] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)
    log: str = ""
    duration_s: float = 0.0
    requests: list[dict[str, Any]] = attrs.Factory(list)
    events: int = 0
    driver_broken: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "result": "pass" if self.passed else "fail",
            "failures": self.failures,
            "notes": self.notes,
            "duration_s": round(self.duration_s, 3),
            "wire_events": self.events,
            "requests": self.requests,
            "log": self.log[-20000:],
        }


def event_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(wafermon.schema_path().read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


class ScenarioRun:
    """Performs ``scenario`` with ``driver`` in the fresh folder ``folder``, then judges it."""

    def __init__(self, scenario: Scenario, driver: DriverProcess, folder: Path) -> None:
        self.scenario = scenario
        self.driver = driver
        self.folder = folder
        self.direct_root = folder / "direct"
        self.recorder = Recorder()
        self.outcome = Outcome(scenario.name)
        hello = driver.hello
        self.context = Context(
            variables={
                "sdk": hello.get("sdk"),
                "sdk_version": hello.get("sdk_version"),
                "host": socket.gethostname(),
                "driver_pid": driver.pid,
            }
        )
        self.inputs: dict[str, bool] = {}  # event_id handed to emit_* -> valid per the codec
        self.tokens: list[str | None] = []  # WAFERMON_TOKEN of each successful init
        self.last_driver_op = ""

    # -- acting -----------------------------------------------------------------------------------

    def perform(self) -> Outcome:
        started = time.monotonic()
        mark = self.driver.log_mark()
        window_start = datetime.now(UTC)
        self.recorder.start()
        try:
            steps = self.scenario.steps
            for index, step in enumerate(steps):
                if not self._step(index, step):
                    if index + 1 < len(steps):
                        skipped = len(steps) - index - 1
                        self.outcome.failures.append(f"the last {skipped} step(s) were skipped")
                    break
        finally:
            self.recorder.stop()
            self.context.window = (window_start, datetime.now(UTC))
        if not self.outcome.driver_broken and self.last_driver_op != "close":
            self._cleanup()
        self._judge()
        self.outcome.duration_s = time.monotonic() - started
        self.outcome.log = self.driver.log_since(mark)
        self.outcome.requests = [r.summary() for r in self.recorder.requests]
        return self.outcome

    def _step(self, index: int, step: dict[str, Any]) -> bool:
        op = step["op"]
        where = f"step {index} ({op})"
        if op not in DRIVER_OPS:
            return self._runner_step(where, step)
        request = {k: v for k, v in step.items() if k != "expect"}
        if op == "init":
            request["env"] = self._env(step["env"])
        if op == "emit_event":
            self._note_inputs([step["event"]])
        if op == "emit_batch":
            self._note_inputs(step["events"])
        try:
            response = self.driver.request(request)
        except DriverFailure as exc:
            self.outcome.failures.append(f"{where}: {exc}")
            self.outcome.driver_broken = True
            return False
        self.last_driver_op = op
        if op == "init" and response.get("ok"):
            self.tokens.append(request["env"].get("WAFERMON_TOKEN"))
        expected = step.get("expect", {"ok": True})
        why = match_partial(expected, response, self.context, "response")
        if why:
            self.outcome.failures.append(f"{where}: {why}; the driver answered {_short(response)}")
            return False
        return True

    def _runner_step(self, where: str, step: dict[str, Any]) -> bool:
        op = step["op"]
        if op == "sidecar_down":
            self.recorder.down()
        elif op == "sidecar_up":
            self.recorder.up()
        elif op == "sidecar_refuse":
            self.recorder.refuse(step["requests"], step["status"], step.get("retry_after"))
        elif op == "sleep":
            time.sleep(step["seconds"])
        elif op == "wait_for_events":
            deadline = time.monotonic() + step["timeout"]
            while (count := len(self._collect())) < step["count"]:
                if time.monotonic() > deadline:
                    self.outcome.failures.append(
                        f"{where}: {count} of {step['count']} events reached the wire within "
                        f"{step['timeout']:g}s"
                    )
                    return False
                time.sleep(0.05)
        return True

    def _env(self, env: dict[str, str | None]) -> dict[str, str]:
        values = {
            "{sidecar_url}": self.recorder.url,
            "{direct_url}": self.direct_root.as_uri(),
            "{scenario_dir}": str(self.folder),
        }
        defaults = {
            "WAFERMON_SIDECAR_URL": "{sidecar_url}",
            "WAFERMON_SPOOL_DIR": "{scenario_dir}/spool",
        }
        out = {}
        for name, value in {**defaults, **env}.items():
            if value is None:
                continue
            for token, replacement in values.items():
                value = value.replace(token, replacement)
            out[name] = value
        return out

    def _note_inputs(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, dict) and isinstance(event.get("event_id"), str):
                body = json.dumps(event).encode()
                self.inputs[event["event_id"]] = bool(decode_batch(body).events)

    def _cleanup(self) -> None:
        """Close a client the scenario left open, so it cannot act in the next scenario."""
        try:
            self.driver.request({"op": "close", "timeout": 2})
        except DriverFailure as exc:
            self.outcome.notes.append(f"closing after the scenario: {exc}")
            self.outcome.driver_broken = True

    # -- observing --------------------------------------------------------------------------------

    def _collect(self) -> list[WireEvent]:
        if self.scenario.wire == "files":
            return collect_files(self.direct_root)
        return collect_requests(self.recorder)

    # -- judging ----------------------------------------------------------------------------------

    def _judge(self) -> None:
        events = self._collect()
        self.outcome.events = len(events)
        fail = self.outcome.failures.append
        validator = event_validator()
        good: list[WireEvent] = []
        for event in events:
            invalid_input = self.inputs.get(event.event_id) is False
            problems = list(event.problems)
            if event.document is not None:
                problems += [
                    f"schema: {e.json_path}: {e.message}"
                    for e in validator.iter_errors(event.document)
                ]
            if invalid_input:
                if event.accepted:
                    fail(f"{event.origin}: an invalid event handed to the SDK was accepted")
                else:
                    self.outcome.notes.append(
                        f"{event.origin}: the invalid input {event.event_id} reached the wire "
                        "and was rejected there"
                    )
                continue
            if problems or not event.accepted:
                fail(f"{event.label()}: not a valid event: " + "; ".join(problems[:5]))
                continue
            good.append(event)
        for event_id, count in Counter(e.event_id for e in good).items():
            if count > 1:
                fail(f"event {event_id} reached the wire {count} times (expected once)")
        made = [e for e in good if e.event_id not in self.inputs]
        for event in made:
            self._check_made(event)
        self._check_lifecycles(made)
        self._check_expected(good)
        if self.scenario.wire == "sidecar":
            self._check_requests()
        else:
            self._check_files(good)
            if self.recorder.ingest_requests():
                fail(
                    f"direct mode: {len(self.recorder.ingest_requests())} request(s) reached "
                    "the sidecar, expected none"
                )

    def _check_made(self, event: WireEvent) -> None:
        """Rules for an event the SDK made: id, time, source."""
        doc = event.document
        context = Context(dict(self.context.variables), self.context.window)
        rules = {
            "event_id": {"$type": "random_uuid"},
            "time": {"$type": "time"},
            "source": {
                "host": {"$var": "host"},
                "pid": {"$var": "driver_pid"},
                "sdk": {"$var": "sdk"},
                "sdk_version": {"$var": "sdk_version"},
            },
        }
        why = match_partial(rules, doc, context)
        if why:
            self.outcome.failures.append(f"{event.label()}: {why}")

    def _check_lifecycles(self, made: list[WireEvent]) -> None:
        fail = self.outcome.failures.append
        by_entity: dict[Any, list[WireEvent]] = defaultdict(list)
        for event in made:
            by_entity[event.document["entity"]["id"]].append(event)
        for entity_id, events in by_entity.items():
            first = events[0].document
            for event in events[1:]:
                for part in ("entity", "app", "site_id"):
                    if _without_nulls(event.document.get(part)) != _without_nulls(first.get(part)):
                        fail(f"{event.label()}: {part} differs from the entity's first event")
            kinds = [e.document["kind"] for e in events]
            if kinds[0] != "started":
                fail(f"entity {entity_id}: the first event on the wire is {kinds[0]}, not started")
            terminal = [i for i, k in enumerate(kinds) if k in ("finished", "failed")]
            if terminal and terminal[0] != len(kinds) - 1:
                fail(f"entity {entity_id}: events after {kinds[terminal[0]]}: {kinds}")
            times = [e.document["time"] for e in events]
            parsed = [datetime.fromisoformat(t) for t in times]
            if any(b < a for a, b in itertools.pairwise(parsed)):
                fail(f"entity {entity_id}: times go back in arrival order: {times}")
            for event in events:
                self._check_metrics(event)

    def _check_metrics(self, event: WireEvent) -> None:
        doc = event.document
        metrics = {k: v for k, v in (doc.get("metrics") or {}).items() if v is not None}
        kind = doc["kind"]
        fail = self.outcome.failures.append
        if kind == "started" and any(v != 0 for v in metrics.values()):
            fail(f"{event.label()}: started carries non-zero metrics {metrics}")
        if kind == "progress" and "duration_s" not in metrics:
            fail(f"{event.label()}: progress lacks metrics.duration_s")
        if kind in ("finished", "failed"):
            missing = [m for m in LIFECYCLE_METRICS if m not in metrics]
            if missing:
                fail(f"{event.label()}: {kind} lacks metrics {', '.join(missing)}")

    def _check_expected(self, good: list[WireEvent]) -> None:
        expected = self.scenario.expect["events"]
        found = assign(expected, good, self.context)
        fail = self.outcome.failures.append
        if found is None:
            for index, why in explain_unmatched(expected, good, self.context):
                label = _describe(expected[index])
                fail(f"expected event {index} ({label}) is not on the wire: {why}")
            return
        pairs, self.context.variables = found
        used = set(pairs)
        for j, event in enumerate(good):
            if j not in used:
                fail(f"unexpected event on the wire: {event.label()}")
        # Expected order within an entity must be the arrival order.
        last: dict[Any, tuple[int, WireEvent]] = {}
        for index, j in enumerate(pairs):
            event = good[j]
            entity = event.document["entity"]["id"]
            if entity in last and last[entity][1].position > event.position:
                fail(
                    f"entity {entity}: expected event {index} ({event.label()}) arrived before "
                    f"expected event {last[entity][0]} ({last[entity][1].label()})"
                )
            last[entity] = (index, event)

    def _check_requests(self) -> None:
        fail = self.outcome.failures.append
        requests = self.recorder.ingest_requests()
        rules = self.scenario.expect.get("requests", {})
        token = self.tokens[-1] if self.tokens else None
        for request in self.recorder.requests:
            if not request.is_ingest:
                where = f"request {request.number}: {request.method} {request.path}"
                fail(f"{where} is not {INGEST_PATHS[0]}")
        for request in requests:
            where = f"request {request.number}"
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != NDJSON:
                fail(f"{where}: Content-Type is {kind or 'missing'}, expected {NDJSON}")
            if request.path != INGEST_PATHS[0]:
                fail(f"{where}: posted to {request.path}, expected {INGEST_PATHS[0]}")
            auth = request.headers.get("authorization")
            if token and auth != f"Bearer {token}":
                fail(
                    f"{where}: Authorization is {auth!r}, expected the Bearer token WAFERMON_TOKEN"
                )
            if not token and auth is not None:
                fail(f"{where}: sends Authorization though WAFERMON_TOKEN is not set")
            headers = rules.get("headers", {})
            why = (
                match_partial(headers, request.headers, self.context, "headers")
                if headers
                else None
            )
            if why:
                fail(f"{where}: {why}")
            if "max_events" in rules and len(request.events) > rules["max_events"]:
                fail(
                    f"{where}: holds {len(request.events)} events, more than {rules['max_events']}"
                )
        if len(requests) < rules.get("min_count", 0):
            fail(f"{len(requests)} ingest request(s), expected at least {rules['min_count']}")
        for before, after in itertools.pairwise(requests):
            if before.retry_after is not None:
                waited = after.received - before.answered
                if waited < before.retry_after:
                    fail(
                        f"request {after.number} came {waited:.3f}s after request "
                        f"{before.number} was answered {before.status} with Retry-After "
                        f"{before.retry_after:g}; it must wait at least that long"
                    )

    def _check_files(self, good: list[WireEvent]) -> None:
        for event in good:
            assert event.file is not None
            relative = event.file.relative_to(self.direct_root)
            want = (event.document["site_id"], event.document["time"][:10])
            if relative.parts[:2] != want:
                self.outcome.failures.append(
                    f"{event.origin}: lies in {relative.parent}, expected {want[0]}/{want[1]} "
                    "(site_id / UTC date of time)"
                )


# -- observing ------------------------------------------------------------------------------------


def collect_requests(recorder: Recorder) -> list[WireEvent]:
    """Events the recording sidecar stored (answered 202), with the codec's verdicts."""
    found = []
    for request in recorder.ingest_requests():
        if request.status not in (202, 400):
            continue  # refused as a whole (503, 413, ...): nothing of it was stored
        for verdict in request.events:
            found.append(
                WireEvent(
                    verdict.document,
                    len(found),
                    f"request {request.number}, event {verdict.index}",
                    verdict.accepted,
                    verdict.problems,
                    request=request,
                )
            )
    return found


def collect_files(root: Path) -> list[WireEvent]:
    """Events in the filesystem backend's files under ``root``: {site}/{date}/events*.jsonl*,
    rotated files before the active one in each folder."""
    found: list[WireEvent] = []
    if not root.is_dir():
        return found
    for folder in sorted({p.parent for p in root.glob("*/*/events*.jsonl*")}):
        files = sorted(
            folder.glob("events*.jsonl*"), key=lambda p: (p.name == "events.jsonl", p.name)
        )
        for path in files:
            if path.name.endswith(".tmp"):
                continue
            opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as file:
                for number, line in enumerate(file, 1):
                    if not line.strip():
                        continue
                    origin = f"{path.relative_to(root)} line {number}"
                    try:
                        document = json.loads(line)
                    except ValueError as exc:
                        found.append(
                            WireEvent(
                                None, len(found), origin, False, [f"not JSON: {exc}"], file=path
                            )
                        )
                        continue
                    batch = decode_batch(line)
                    problems = [str(p) for r in batch.rejected for p in r.problems]
                    found.append(
                        WireEvent(
                            document, len(found), origin, bool(batch.events), problems, file=path
                        )
                    )
    return found


# -- matching expected events ---------------------------------------------------------------------


def assign(
    expected: list[dict[str, Any]], actual: list[WireEvent], context: Context
) -> tuple[list[int], dict[str, Any]] | None:
    """A one-to-one choice of wire events for the expected ones (index per expected event) and
    the variables it binds; None if there is none. Depth-first with backtracking."""
    budget = [SEARCH_BUDGET]

    def search(i: int, used: frozenset[int], variables: dict[str, Any]):
        if i == len(expected):
            return [], variables
        for j, event in enumerate(actual):
            if j in used:
                continue
            budget[0] -= 1
            if budget[0] < 0:
                return None
            trial = Context(dict(variables), context.window)
            if match_partial(expected[i], event.document, trial) is None:
                rest = search(i + 1, used | {j}, trial.variables)
                if rest is not None:
                    return [j, *rest[0]], rest[1]
        return None

    return search(0, frozenset(), dict(context.variables))


def explain_unmatched(
    expected: list[dict[str, Any]], actual: list[WireEvent], context: Context
) -> list[tuple[int, str]]:
    """Greedy matching, to say which expected events found no wire event, and the nearest miss."""
    variables = dict(context.variables)
    used: set[int] = set()
    out = []
    for i, want in enumerate(expected):
        reasons = []
        for j, event in enumerate(actual):
            if j in used:
                continue
            trial = Context(dict(variables), context.window)
            why = match_partial(want, event.document, trial)
            if why is None:
                used.add(j)
                variables = trial.variables
                break
            same_kind = isinstance(event.document, dict) and event.document.get("kind") == want.get(
                "kind"
            )
            reasons.append((not same_kind, f"{event.origin}: {why}"))
        else:
            nearest = sorted(reasons)[:2]
            out.append((i, "; ".join(r for _, r in nearest) or "the wire holds no event"))
    return out or [(0, "no consistent one-to-one assignment (variables bind differently)")]


def _describe(expected: dict[str, Any]) -> str:
    entity = expected.get("entity")
    label = json.dumps(entity, ensure_ascii=False) if entity is not None else "?"
    return f"{expected.get('kind')} of {label[:80]}"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 400 else text[:397] + "..."


def run_scenario(scenario: Scenario, driver: DriverProcess, workdir: Path) -> Outcome:
    folder = workdir / scenario.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return ScenarioRun(scenario, driver, folder).perform()
