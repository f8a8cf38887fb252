"""format: jsonl | json | csv — written, rotated, gzipped and read back by the adapter."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wafermon_backend_filesystem.plugin
from wafermon import (
    App,
    Entity,
    ErrorInfo,
    Event,
    EventDecodeError,
    Metrics,
    Query,
    Source,
    to_json_dict,
)
from wafermon.config import load_config
from wafermon.errors import ConfigError
from wafermon.plugins import Plugins
from wafermon_backend_filesystem import (
    AdapterSettings,
    EmitterSettings,
    FilesystemEmitter,
    FilesystemQueryAdapter,
    formats,
    layout,
)


def awkward(t0) -> Event:
    """Every column filled, with what breaks naive CSV: commas, quotes, newlines, backslashes,
    leading spaces, an empty (not null) version, unicode and nested metadata."""
    return Event(
        event_id=uuid4(),
        kind="failed",
        time=t0 + timedelta(microseconds=7),
        site_id="fab1",
        app=App(name='etch, "main"', version="", app_id=uuid4()),
        entity=Entity(
            type="subjob", id="w\n01", parent_id="lot\\7", business_key=" LOT-7", sub_key="Ω"
        ),
        metrics=Metrics(
            duration_s=3, cpu_user_s=1.25, cpu_system_s=0.0, mem_max_mb=1e3, progress=1
        ),
        metadata={"recipe": {"name": "A,B", "steps": [1, 2]}, "note": 'say "hi"\nbye'},
        error=ErrorInfo(type="ChamberFault", message="", stack='File "x", line 1\r\n  C:\\tmp'),
        source=Source(host="node-1", pid=4242, sdk="python", sdk_version="0.1.0"),
    )


async def write_and_read(root, fmt, events, **settings):
    emitter = FilesystemEmitter("fs", EmitterSettings(root=root, format=fmt, **settings))
    await emitter.start()
    half = len(events) // 2
    await emitter.emit(events[:half])
    await emitter.emit(events[half:])
    await emitter.close()
    adapter = FilesystemQueryAdapter("fs", AdapterSettings(root=root))
    return (await adapter.query(Query(limit=10_000))).events


@pytest.mark.parametrize("fmt", formats.FORMATS)
async def test_every_format_reads_back_exactly(root, make_event, t0, fmt):
    events = [awkward(t0)] + [make_event(kind=k) for k in ("started", "progress", "finished") * 5]
    got = await write_and_read(root, fmt, events)
    assert sorted(got, key=lambda e: e.sort_key) == sorted(events, key=lambda e: e.sort_key)
    [active] = (root / "fab1").glob("*/events.*")
    assert active.name == "events" + formats.suffix(fmt)


@pytest.mark.parametrize("fmt", formats.FORMATS)
async def test_rotation_and_gzip_per_format(root, make_event, fmt):
    events = [make_event() for _ in range(40)]
    got = await write_and_read(root, fmt, events, rotate_bytes=2000)
    assert sorted(e.event_id for e in got) == sorted(e.event_id for e in events)
    rotated = sorted((root / "fab1").glob("*/events.*" + formats.suffix(fmt) + ".gz"))
    assert len(rotated) >= 2
    for path in rotated:
        text = gzip.decompress(path.read_bytes()).decode()
        if fmt == "json":  # a rotated JSON file is one complete JSON array
            assert [e["kind"] for e in json.loads(text)] == ["started"] * len(json.loads(text))
        if fmt == "csv":  # each rotated CSV file starts with the documented header
            rows = list(csv.DictReader(io.StringIO(text)))
            assert tuple(rows[0]) == formats.CSV_COLUMNS
            assert {row["kind"] for row in rows} == {"started"}


async def test_csv_is_readable_by_a_spreadsheet_reader(root, t0):
    event = awkward(t0)
    await write_and_read(root, "csv", [event])
    [path] = (root / "fab1").glob("*/events.csv")
    with path.open(newline="", encoding="utf-8") as file:
        [row] = list(csv.DictReader(file))
    wire = to_json_dict(event)
    assert row["event_id"] == wire["event_id"]
    assert row["time"] == wire["time"]
    assert row["app_name"] == 'etch, "main"'
    assert row["entity_id"] == "w\\n01"  # one line per event: escaped, the adapter unescapes
    assert json.loads(row["metadata"]) == event.metadata  # nested metadata: one JSON column
    assert row["duration_s"] == "3"
    assert row["progress"] == "1"


async def test_a_torn_csv_row_is_cut_and_the_rest_reads(root, make_event):
    first = [make_event() for _ in range(3)]
    emitter = FilesystemEmitter("fs", EmitterSettings(root=root, format="csv"))
    await emitter.start()
    await emitter.emit(first)
    [active] = (root / "fab1").glob("*/events.csv")
    # A crash mid-write: half a row, no newline; the lock file stays "dirty".
    with active.open("ab") as file:
        file.write(formats.csv_row(make_event()).encode()[:40])
    emitter._root_lock.close()  # the process died: its lock and files go with it
    emitter._root_lock = None
    for held in emitter._open.values():
        held.file.close()
    emitter._open.clear()
    again = FilesystemEmitter("fs", EmitterSettings(root=root, format="csv"))
    await again.start()
    second = [make_event() for _ in range(2)]
    await again.emit(second)
    await again.close()
    got = await FilesystemQueryAdapter("fs", AdapterSettings(root=root)).query(Query())
    assert [e.event_id for e in got.events] == [e.event_id for e in first + second]


async def test_a_root_with_several_formats_reads_back_whole(root, make_event):
    by_format = {fmt: [make_event() for _ in range(3)] for fmt in formats.FORMATS}
    for fmt, events in by_format.items():
        emitter = FilesystemEmitter("fs", EmitterSettings(root=root, format=fmt))
        await emitter.start()
        await emitter.emit(events)
        await emitter.close()
    got = await FilesystemQueryAdapter("fs", AdapterSettings(root=root)).query(Query())
    assert {e.event_id for e in got.events} == {e.event_id for v in by_format.values() for e in v}
    assert len(layout.event_files(next((root / "fab1").iterdir()))) == 3


def test_an_unknown_format_is_named_in_the_config_error(tmp_path):
    plugins = Plugins()
    plugins.register(wafermon_backend_filesystem.plugin, "filesystem")
    site = tmp_path / "site.yaml"
    site.write_text(
        "site_id: fab1\nbackends:\n  - name: fs\n    type: filesystem\n"
        "    config: {root: ./ev, format: xml}\n"
    )
    with pytest.raises(ConfigError, match=r"backends\[0\].config.format.*one of jsonl, json, csv"):
        load_config(site).build("backends", plugins)


def test_a_damaged_csv_row_is_an_event_decode_error():
    with pytest.raises(EventDecodeError, match="not a CSV event row"):
        formats.csv_event(b'abc,"unterminated\n')
    with pytest.raises(EventDecodeError):
        formats.csv_event(b"a,b,c\n")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_any_text_column_reads_back_as_written(text):
    """csv_row's fast path (plain values unquoted) and its escaping agree with csv_event."""
    event = Event(
        event_id=uuid4(),
        kind="started",
        time=datetime(2026, 12, 4, tzinfo=UTC),
        site_id="fab1",
        app=App(name="etch"),
        entity=Entity(type="job", id="lot-1", business_key=text or None, sub_key=text or None),
    )
    row = formats.csv_row(event).encode()
    assert row.count(b"\n") == 1  # one line, whatever the text holds
    assert formats.csv_event(row) == event
