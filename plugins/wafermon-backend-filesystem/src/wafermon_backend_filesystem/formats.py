"""The file formats of the filesystem backend: ``jsonl`` (default), ``json`` and ``csv``.

Every format keeps the invariant the emitter's crash recovery and the adapter rely on: **one
event is exactly one line**, and every write ends with a newline. So a torn tail is still cut
at the last newline, rotation and gzip work unchanged, and the adapter reads any file line by
line, choosing the decoder by the file's suffix (a root may hold several formats after a
config change).

- ``jsonl``: one wire event per line (``events.jsonl``).
- ``json``: a JSON array, one element per line: ``[`` alone on the first line, each event on
  its own line with a leading comma after the first, ``]`` appended when the file is rotated
  (``events.json``). Rotated files are complete JSON documents; the active one is not closed
  until it rotates.
- ``csv``: a header line, then one row per event with the columns ``CSV_COLUMNS`` (RFC 4180
  quoting, UTF-8, ``\\n`` line ends; ``events.csv``). ``metadata`` is one JSON column (not
  flattened: flattening gives every file a different, unbounded column set and cannot be read
  back exactly). In text columns a backslash, line feed and carriage return are written as
  ``\\\\``, ``\\n`` and ``\\r`` to keep the row on one line; an empty field is null and ``""``
  an empty string.

This module never touches files: the emitter appends what ``encode`` returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

import wafermon
from wafermon import Event, EventDecodeError, Problem, encode_event, encode_ndjson

FORMATS = ("jsonl", "json", "csv")
SUFFIXES = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv"}

JSON_HEADER = b"[\n"
JSON_FOOTER = b"]\n"

#: The CSV columns, in order. Text columns are escaped as the module docstring says.
CSV_COLUMNS = (
    "event_id",
    "time",
    "kind",
    "site_id",
    "app_name",
    "app_version",
    "app_id",
    "entity_type",
    "entity_id",
    "parent_id",
    "business_key",
    "sub_key",
    "duration_s",
    "cpu_user_s",
    "cpu_system_s",
    "mem_max_mb",
    "progress",
    "error_type",
    "error_message",
    "error_stack",
    "source_host",
    "source_pid",
    "source_sdk",
    "source_sdk_version",
    "metadata",
    "schema_version",
)
CSV_HEADER = (",".join(CSV_COLUMNS) + "\n").encode()
_NUMBERS = frozenset(
    {"duration_s", "cpu_user_s", "cpu_system_s", "mem_max_mb", "progress", "source_pid"}
)
_NEEDS_QUOTES = re.compile(r'[,"]|^\s|\s$')
_SPECIAL = re.compile(r'[,"\\\n\r]|^\s|\s$')  # what _text must escape or quote
_FIELD = re.compile(r'(?:"((?:[^"]|"")*)"|([^,"]*))(,|$)')
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r"})
_UNESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"\\": "\\", "n": "\n", "r": "\r"}


def suffix(fmt: str) -> str:
    """The file suffix of a format (``.jsonl``, ``.json``, ``.csv``)."""
    return SUFFIXES[fmt]


def footer(fmt: str) -> bytes:
    """What to append to a file of this format before it is rotated (closes a JSON array)."""
    return JSON_FOOTER if fmt == "json" else b""


def encode(fmt: str, events: Sequence[Event], written: int) -> bytes:
    """The bytes to append to a file of format ``fmt`` that already holds ``written`` bytes:
    the header when it is empty, then one line per event."""
    if fmt == "jsonl":
        return encode_ndjson(events)
    if fmt == "json":
        lines = [encode_event(e) + b"\n" for e in events]
        if written > len(JSON_HEADER):
            lines[0] = b"," + lines[0]
        head = JSON_HEADER if written == 0 else b""
        return head + lines[0] + b"".join(b"," + line for line in lines[1:]) if lines else b""
    if fmt == "csv":
        return (CSV_HEADER if written == 0 else b"") + "".join(map(csv_row, events)).encode()
    raise ValueError(f"unknown format {fmt!r}")


# -- CSV ----------------------------------------------------------------------------------------


def _text(value: str | None) -> str:
    if value is None:
        return ""
    if value and not _SPECIAL.search(value):  # most values: nothing to escape or quote
        return value
    value = value.translate(_ESCAPES)
    if not value or _NEEDS_QUOTES.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def csv_row(event: Event) -> str:
    """One event as one CSV line (with its newline), columns as ``CSV_COLUMNS``."""
    app, entity, metrics, error, source = (
        event.app,
        event.entity,
        event.metrics,
        event.error,
        event.source,
    )
    metadata = orjson.dumps(event.metadata).decode()
    fields = (
        str(event.event_id),
        orjson.dumps(event.time, option=orjson.OPT_UTC_Z).decode()[1:-1],
        str(event.kind),
        event.site_id,
        _text(app.name),
        _text(app.version),
        "" if app.app_id is None else str(app.app_id),
        str(entity.type),
        _text(entity.id),
        _text(entity.parent_id),
        _text(entity.business_key),
        _text(entity.sub_key),
        _number(metrics.duration_s),
        _number(metrics.cpu_user_s),
        _number(metrics.cpu_system_s),
        _number(metrics.mem_max_mb),
        _number(metrics.progress),
        _text(error.type) if error else "",
        _text(error.message) if error else "",
        _text(error.stack) if error else "",
        _text(source.host),
        _number(source.pid),
        _text(source.sdk),
        _text(source.sdk_version),
        '"' + metadata.replace('"', '""') + '"',
        str(event.schema_version),
    )
    return ",".join(fields) + "\n"


def _split(line: str) -> list[str | None]:
    """A CSV line's fields; None for an empty unquoted field (null), '' for ``""``."""
    fields: list[str | None] = []
    pos = 0
    while True:
        match = _FIELD.match(line, pos)
        if match is None:
            raise ValueError(f"unreadable CSV at character {pos}")
        quoted, plain, sep = match.groups()
        if quoted is not None:
            fields.append(quoted.replace('""', '"'))
        else:
            fields.append(plain or None)
        if not sep:
            if match.end() != len(line):
                raise ValueError(f"unreadable CSV at character {match.end()}")
            return fields
        pos = match.end()


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), value)


def _parse_number(text: str) -> float | int:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def csv_event(line: bytes, columns: Sequence[str] = CSV_COLUMNS) -> Event:
    """Decode one CSV row back into the event it was written from (EventDecodeError if not)."""
    try:
        values = _split(line.decode("utf-8").rstrip("\r\n"))
        if len(values) != len(columns):
            raise ValueError(f"{len(values)} fields, the header has {len(columns)}")
        row: dict[str, Any] = {}
        for name, value in zip(columns, values, strict=True):
            if value is None:
                continue
            if name in _NUMBERS or name == "schema_version":
                row[name] = _parse_number(value)
            elif name == "metadata":
                row[name] = orjson.loads(value)
            else:
                row[name] = _unescape(value)
    except (ValueError, UnicodeDecodeError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise EventDecodeError([Problem("$", f"not a CSV event row: {exc}")]) from None

    def pick(**names: str) -> dict[str, Any]:
        return {key: row[column] for key, column in names.items() if column in row}

    wire: dict[str, Any] = pick(
        schema_version="schema_version",
        event_id="event_id",
        kind="kind",
        time="time",
        site_id="site_id",
        metadata="metadata",
    )
    wire["app"] = pick(name="app_name", version="app_version", app_id="app_id")
    wire["entity"] = pick(
        type="entity_type",
        id="entity_id",
        parent_id="parent_id",
        business_key="business_key",
        sub_key="sub_key",
    )
    wire["metrics"] = pick(
        duration_s="duration_s",
        cpu_user_s="cpu_user_s",
        cpu_system_s="cpu_system_s",
        mem_max_mb="mem_max_mb",
        progress="progress",
    )
    if "error_type" in row:
        wire["error"] = pick(type="error_type", message="error_message", stack="error_stack")
    wire["source"] = pick(host="source_host", pid="source_pid", sdk="source_sdk")
    wire["source"].update(pick(sdk_version="source_sdk_version"))
    return wafermon.structure_event(wire)


# -- reading any format back --------------------------------------------------------------------


def file_format(path: Path) -> str | None:
    """The format of an event file from its name (``events….csv.gz`` is csv), or None."""
    name = path.name.removesuffix(".gz")
    for fmt, ending in SUFFIXES.items():
        if name.endswith(ending):
            return fmt
    return None


class LineDecoder:
    """Decodes the lines of event files of any format, one file after another.

    ``decode(path, line)`` returns the line's event, or None for a line that holds none (a
    CSV header, a JSON array's brackets); a damaged line raises EventDecodeError. It keeps
    the CSV header of the file being read, so files written with other columns still read.
    """

    def __init__(self) -> None:
        self._path: Path | None = None
        self._decode: Callable[[bytes], Event | None] = wafermon.decode_event
        self._columns: Sequence[str] = CSV_COLUMNS

    def decode(self, path: Path, line: bytes) -> Event | None:
        if path != self._path:
            self._path = path
            fmt = file_format(path)
            self._decode = {"json": self._json, "csv": self._csv}.get(
                fmt or "", wafermon.decode_event
            )
            self._columns = CSV_COLUMNS
        return self._decode(line)

    @staticmethod
    def _json(line: bytes) -> Event | None:
        text = line.strip()
        if text in (b"[", b"]", b""):
            return None
        return wafermon.decode_event(text.removeprefix(b",").removeprefix(b"["))

    def _csv(self, line: bytes) -> Event | None:
        if line.startswith(b"event_id,"):
            self._columns = tuple(line.decode("utf-8", "replace").rstrip("\r\n").split(","))
            return None
        return csv_event(line, self._columns)
