"""The wafermon CLI, run in-process through click's test runner with a test plugin."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import uuid4

import attrs
import orjson
import pytest
from click.testing import CliRunner

from wafermon import ByteSize, Emitter, Query, QueryAdapter, QueryResult, encode_cursor, hookimpl
from wafermon import cli as cli_module
from wafermon.config import Seconds, Secret
from wafermon.plugins import Plugins

STORE: list = []


class ListEmitter(Emitter):
    async def emit(self, batch):
        STORE.extend(batch)


class ListAdapter(QueryAdapter):
    async def query(self, query: Query) -> QueryResult:
        after = query.after_cursor()
        found = sorted(
            (e for e in STORE if query.matches(e) and (after is None or e.sort_key > after)),
            key=lambda e: e.sort_key,
        )
        page = found[: query.limit]
        more = len(found) > query.limit
        return QueryResult(page, encode_cursor(page[-1]) if more else None)


class ListPlugin:
    @hookimpl
    def register_emitters(self, register):
        register("list", ListEmitter)

    @hookimpl
    def register_query_adapters(self, register):
        register("list", ListAdapter)


@pytest.fixture
def runner(monkeypatch):
    plugins = Plugins()
    plugins.register(ListPlugin(), "list", version="9.9", distribution="wafermon-backend-list")
    monkeypatch.setattr(cli_module, "_plugins", lambda: plugins)
    STORE.clear()
    return CliRunner()


@pytest.fixture
def site(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(
        "site_id: fab1\n"
        "gateway: {tokens: {ingest: '${TOKEN:-topsecret}'}}\n"
        "backends: [{name: mem, type: list}]\n"
        "sources: [{name: mem, type: list}]\n"
    )
    return str(path)


def test_plugins_lists_versions_and_what_each_provides(runner):
    result = runner.invoke(cli_module.cli, ["plugins"])
    assert result.exit_code == 0
    assert "list (wafermon-backend-list 9.9)" in result.output
    assert "provides: emitter:list, query_adapter:list" in result.output
    as_json = json.loads(runner.invoke(cli_module.cli, ["plugins", "--json"]).output)
    assert as_json[0]["provides"] == ["emitter:list", "query_adapter:list"]


def test_config_check_ok_and_failing(runner, site, tmp_path):
    ok = runner.invoke(cli_module.cli, ["config", "check", site])
    assert ok.exit_code == 0, ok.output
    assert "OK (site fab1)" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("site_id: fab1\nbackends: [{name: x, type: nosuch}]\n")
    result = runner.invoke(cli_module.cli, ["config", "check", str(bad)])
    assert result.exit_code == 1
    assert "no installed plugin provides emitter type 'nosuch'" in result.output


def test_config_show_masks_secrets(runner, site):
    result = runner.invoke(cli_module.cli, ["config", "show", site])
    assert result.exit_code == 0
    assert "topsecret" not in result.output
    assert "ingest: '***'" in result.output


def test_schema_prints_the_contract(runner):
    result = runner.invoke(cli_module.cli, ["schema"])
    assert json.loads(result.output)["$id"] == "urn:wafermon:schema:event:1"


def test_emit_sends_valid_events_and_reports_bad_ones(runner, site, valid):
    body = orjson.dumps(valid) + b"\n" + orjson.dumps(dict(valid, kind="boom")) + b"\n"
    result = runner.invoke(cli_module.cli, ["emit", "-c", site], input=body)
    assert result.exit_code == 1  # one event was rejected
    assert "rejected <stdin> event 1: $.kind: must be one of" in result.output
    assert "mem: 1 events" in result.output
    assert [str(e.event_id) for e in STORE] == [valid["event_id"]]


def test_emit_names_each_bad_items_field_and_reason_and_sends_the_valid_ones(
    runner, site, valid, monkeypatch
):
    """``wafermon emit`` applies the hosts' ingest rules (wafermon.ingest): rejected items by
    index, field and reason, a repeated event_id sent once, events a transform drops named."""
    second, dropped = dict(valid, event_id=str(uuid4())), dict(valid, event_id=str(uuid4()))
    items = [
        valid,
        dict(valid, event_id=str(uuid4()), duration_s=-1, kind="finished"),
        {"not": "an event"},
        valid,  # the same event again: sent once
        second,
        dropped,
    ]

    class DropOne:
        @hookimpl
        def transform_events(self, events):
            return [e for e in events if str(e.event_id) != dropped["event_id"]]

    cli_module._plugins().register(DropOne(), "drop-one")
    result = runner.invoke(cli_module.cli, ["emit", "-c", site], input=orjson.dumps(items))
    assert result.exit_code == 1  # items were rejected
    lines = result.output.splitlines()
    assert any(line.startswith("rejected <stdin> event 1: $.duration_s:") for line in lines), (
        result.output
    )
    assert any(line.startswith("rejected <stdin> event 2: $.") for line in lines), result.output
    assert f"duplicate <stdin> event 3: a copy of an earlier {valid['event_id']}" in lines
    assert "rejected <stdin> event 5: $: dropped by a transform_events plugin" in lines
    assert "mem: 2 events" in lines
    assert [str(e.event_id) for e in STORE] == [valid["event_id"], second["event_id"]]


def test_emit_of_good_events_with_a_repeat_exits_0(runner, site, valid):
    body = orjson.dumps(valid) + b"\n" + orjson.dumps(valid) + b"\n"
    result = runner.invoke(cli_module.cli, ["emit", "-c", site], input=body)
    assert result.exit_code == 0, result.output  # a duplicate is not an error
    assert [str(e.event_id) for e in STORE] == [valid["event_id"]]


def test_query_pages_through_a_source(runner, site, valid):
    events = [dict(valid, event_id=f"00000000-0000-4000-8000-{i:012d}") for i in range(5)]
    runner.invoke(cli_module.cli, ["emit", "-c", site], input=orjson.dumps(events))
    first = runner.invoke(cli_module.cli, ["query", "-c", site, "--source", "mem", "--limit", "2"])
    assert first.exit_code == 0, first.output
    assert "more: --cursor" in first.output
    everything = runner.invoke(
        cli_module.cli, ["query", "-c", site, "--source", "mem", "--limit", "2", "--all"]
    )
    ids = [json.loads(line)["event_id"] for line in everything.stdout.splitlines()]
    assert ids == [e["event_id"] for e in events]


def test_query_rejects_bad_options(runner, site):
    result = runner.invoke(cli_module.cli, ["query", "-c", site, "--source", "mem", "--limit", "0"])
    assert result.exit_code == 2
    assert "--limit" in result.output
    result = runner.invoke(cli_module.cli, ["query", "-c", site, "--source", "nope"])
    assert "no enabled source named 'nope'" in result.output
    result = runner.invoke(
        cli_module.cli, ["query", "-c", site, "--source", "mem", "--since", "soon"]
    )
    assert "expected an ISO time or a duration" in result.output


def test_query_model_rejects_naive_times():
    from datetime import datetime

    with pytest.raises(ValueError, match="start: must be a timezone-aware datetime"):
        Query(start=datetime(2026, 1, 1))


@attrs.frozen
class RetryPart:
    attempts: int = 3


@attrs.frozen
class TunedSettings:
    """Settings covering every value type ``plugins --json`` names."""

    url: str
    token: Secret | None = None
    root: Path = Path("data")
    max_bytes: ByteSize = ByteSize(1024)
    every: Seconds = Seconds(30.0)
    tags: list[str] = attrs.Factory(lambda: ["a"])
    headers: dict[str, str] = attrs.Factory(dict)
    retry: RetryPart = attrs.Factory(lambda: RetryPart())


class TunedEmitter(Emitter):
    Settings = TunedSettings

    async def emit(self, batch):
        pass


class TunedPlugin:
    @hookimpl
    def register_emitters(self, register):
        register("tuned", TunedEmitter)


def test_plugins_json_shows_each_components_settings(runner):
    cli_module._plugins().register(TunedPlugin(), "tuned")
    as_json = json.loads(runner.invoke(cli_module.cli, ["plugins", "--json"]).output)
    tuned = next(p for p in as_json if p["name"] == "tuned")
    (component,) = tuned["components"]
    assert (component["kind"], component["type"]) == ("emitter", "tuned")
    fields = {f["name"]: f for f in component["settings"]}
    assert fields["url"] == {"name": "url", "type": "string", "required": True, "default": None}
    assert fields["token"]["type"] == "secret or null"
    assert (fields["root"]["type"], fields["root"]["default"]) == ("path", "data")
    assert (fields["max_bytes"]["type"], fields["max_bytes"]["default"]) == ("size", 1024)
    assert (fields["every"]["type"], fields["every"]["default"]) == ("duration", 30.0)
    assert (fields["tags"]["type"], fields["tags"]["default"]) == ("list of string", ["a"])
    assert fields["headers"]["type"] == "mapping"
    assert fields["retry"]["type"] == "mapping"
    assert fields["retry"]["fields"] == [
        {"name": "attempts", "type": "integer", "required": False, "default": 3}
    ]
    listed = next(p for p in as_json if p["name"] == "list")
    assert [c["settings"] for c in listed["components"]] == [[], []]  # no Settings class
