"""JSON bytes <-> Event objects: the one place wire events are decoded and encoded.

Decoding is strict and names each fault by its JSON path: all structural faults of an event
at once (missing, unknown or mistyped fields, bad UUIDs and times), and, once the structure is
sound, the first failing value check of each object (ranges, patterns, cross-field rules).
Batches are decoded event by event so one bad event never costs the good ones. The happy
path runs a converter without detailed validation (fast); only when it fails is the event
decoded again with detailed validation to build the report.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .errors import (
    BatchDecodeError,
    EventDecodeError,
    FieldValueError,
    Problem,
    explain,
    type_name,
)
from .events import App, Entity, ErrorInfo, Event, Metrics, Source, schema_pattern

_UUID_TEXT = schema_pattern("$defs/uuid")
_TIME_TEXT = schema_pattern("properties/time")


def _structure_uuid(value: Any, _type: type) -> UUID:
    if type(value) is not str or not _UUID_TEXT.fullmatch(value):
        raise ValueError(f"expected a lower-case UUID string, got {value!r}")
    return UUID(value)


def _structure_time(value: Any, _type: type) -> datetime:
    if type(value) is not str or not _TIME_TEXT.fullmatch(value):
        raise ValueError(
            f"expected an RFC 3339 UTC timestamp like 2026-11-28T09:30:00.123456Z, got {value!r}"
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a valid date or time: {value!r} ({exc})") from None


def _passthrough(value: Any, _type: type) -> Any:
    """Leave JSON scalars as they are: the model's validators check their type and range."""
    return value


#: Sub-objects that repeat across the events of a batch (every event of an app carries the same
#: ``app``, every event of a job the same ``entity``): the fast converter builds each distinct
#: one once and hands out the same frozen instance again. Metrics change from event to event.
_INTERNED = (App, Entity, ErrorInfo, Source)
#: Value types whose equality implies an identical decoded value (unlike 1 == 1.0 == True, or
#: 0.0 == -0.0), so an object built from equal values is the object these values would build.
_INTERNABLE = frozenset((str, int, type(None)))
_INTERN_MAX = 4096  # distinct objects kept per class; the cache starts over when full


def _interning(structure: Any, cls: type) -> Any:
    """``structure`` for ``cls`` with a bounded cache keyed by the JSON object's items.

    Only objects whose values are all strings, integers or nulls are cached: for those, equal
    keys mean equal inputs, so the cached instance is exactly what ``structure`` would build.
    Instances are frozen, so sharing one between events is invisible. Only successful builds
    are cached; anything else takes the uncached path and fails (or succeeds) as before.
    """
    cache: dict[tuple[Any, ...], Any] = {}
    internable = _INTERNABLE

    def structure_interned(value: Any, _type: type) -> Any:
        if type(value) is dict:
            for item in value.values():
                if type(item) not in internable:
                    break
            else:
                key = tuple(value.items())
                found = cache.get(key)
                if found is None:
                    found = structure(value, cls)
                    if len(cache) >= _INTERN_MAX:
                        cache.clear()
                    cache[key] = found
                return found
        return structure(value, cls)

    return structure_interned


_ABSENT = object()


def _fast_event_structure(conv: cattrs.Converter) -> Any:
    """The fast converter's Event hook: what cattrs generates for Event, written out.

    Same inputs accepted, same Event built (the sub-objects go through the converter's own
    hooks, absent optional fields get the model's defaults), minus the generic machinery: no
    kwargs dict per event, no pass-through calls for scalars. Any fault raises, and the
    detailed converter then explains it, exactly as for the generated hook.
    """
    fields = frozenset(a.name for a in attrs.fields(Event))
    defaults = {a.name: a.default for a in attrs.fields(Event)}
    no_metrics = cast(Metrics, defaults["metrics"])
    no_source = cast(Source, defaults["source"])
    structure_app = conv.get_structure_hook(App)
    structure_entity = conv.get_structure_hook(Entity)
    structure_metrics = conv.get_structure_hook(Metrics)
    structure_error = conv.get_structure_hook(ErrorInfo)
    structure_source = conv.get_structure_hook(Source)

    def structure_event(o: Any, _type: type) -> Event:
        if type(o) is not dict or "schema_version" not in o or not fields.issuperset(o):
            raise ValueError("not an object with exactly the event's fields")
        get = o.get
        metrics = get("metrics", _ABSENT)
        metadata = get("metadata", _ABSENT)
        error = get("error")
        source = get("source", _ABSENT)
        return Event(
            schema_version=o["schema_version"],
            event_id=_structure_uuid(o["event_id"], UUID),
            kind=o["kind"],
            time=_structure_time(o["time"], datetime),
            site_id=o["site_id"],
            app=structure_app(o["app"], App),
            entity=structure_entity(o["entity"], Entity),
            metrics=no_metrics if metrics is _ABSENT else structure_metrics(metrics, Metrics),
            metadata={} if metadata is _ABSENT else metadata,
            error=None if error is None else structure_error(error, ErrorInfo),
            source=no_source if source is _ABSENT else structure_source(source, Source),
        )

    return structure_event


def _make_converter(*, detailed: bool) -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=True)
    for scalar in (str, int, float, bool, str | None, int | None, float | None):
        conv.register_structure_hook(scalar, _passthrough)
    conv.register_structure_hook_func(lambda t: t == dict[str, Any], _passthrough)
    conv.register_structure_hook(UUID, _structure_uuid)
    conv.register_structure_hook(datetime, _structure_time)

    def object_hook_factory(cls: type) -> Any:
        structure: Any = make_dict_structure_fn(
            cls, conv, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=detailed
        )

        wire_required = [a.name for a in attrs.fields(cls) if a.metadata.get("wire_required")]
        if not detailed and cls is Event:
            return _fast_event_structure(conv)
        if not detailed and cls in _INTERNED:
            return _interning(structure, cls)
        if not detailed and not wire_required:
            return structure  # a non-object fails anyway; the detailed run explains it

        def structure_object(value: Any, _type: type) -> Any:
            if type(value) is not dict:
                raise ValueError(f"expected an object, got {type_name(value)}")
            for name in wire_required:
                if name not in value:
                    raise FieldValueError(name, "required field missing")
            return structure(value, cls)

        return structure_object

    conv.register_structure_hook_factory(attrs.has, object_hook_factory)

    # Encoding: drop absent optional fields; orjson writes UUIDs and datetimes natively.
    conv.register_unstructure_hook(UUID, lambda v: v)
    conv.register_unstructure_hook(datetime, lambda v: v)

    def unstructure_hook(cls: type) -> Any:
        keep: dict[str, Any] = (
            {"schema_version": override(omit_if_default=False)} if cls is Event else {}
        )
        return make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True, **keep)

    conv.register_unstructure_hook_factory(attrs.has, unstructure_hook)
    return conv


_fast = _make_converter(detailed=False)
_detailed = _make_converter(detailed=True)
_ORJSON_OPTS = orjson.OPT_UTC_Z


# -- decoding -----------------------------------------------------------------------------------


def structure_event(obj: Any) -> Event:
    """Build an Event from already-parsed JSON; raises EventDecodeError listing every fault."""
    try:
        return _fast.structure(obj, Event)
    except Exception:  # noqa: BLE001 - any failure is re-run below to explain it precisely
        pass
    try:
        event = _detailed.structure(obj, Event)
    except Exception as exc:  # noqa: BLE001
        raise EventDecodeError(explain(exc, "$")) from None
    return event  # pragma: no cover - the fast converter accepts whatever the detailed one does


def decode_event(data: bytes | str) -> Event:
    """Decode one JSON event."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError([Problem("$", f"not valid JSON: {exc}")]) from None
    return structure_event(obj)


@attrs.frozen
class RejectedEvent:
    """A batch entry that did not decode: its 0-based position, its id if readable, the faults."""

    index: int
    problems: list[Problem]
    event_id: str | None = None

    def __str__(self) -> str:
        return f"event {self.index}: " + "; ".join(str(p) for p in self.problems)


@attrs.frozen
class DecodedBatch:
    """The good events of a batch, in order, and one RejectedEvent per bad one.

    ``lines``, for an NDJSON batch, holds the JSON text of each entry by batch position (so
    ``lines[indexes[k]]`` is what ``events[k]`` was decoded from), without the surrounding JSON
    whitespace: a store that keeps the wire JSON can store that text instead of encoding the
    event again. It is None for a JSON array or a single object.
    """

    events: list[Event]
    rejected: list[RejectedEvent]
    indexes: list[int]  # position in the batch of each accepted event
    lines: list[bytes] | None = None

    @property
    def ok(self) -> bool:
        return not self.rejected


def decode_batch(body: bytes) -> DecodedBatch:
    """Decode a batch: a JSON array of events, NDJSON (one per line), or a single event object.

    Raises BatchDecodeError only when the body as a whole is unreadable; per-event faults are
    reported in ``DecodedBatch.rejected`` and never cost the valid events.
    """
    stripped = body.lstrip()
    if not stripped:
        raise BatchDecodeError([Problem("$", "empty body: expected an event, an array or NDJSON")])
    if stripped[:1] == b"[":
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BatchDecodeError([Problem("$", f"not valid JSON: {exc}")]) from None
        return _structure_all(enumerate(items))
    if stripped[:1] == b"{":
        try:  # a single event, possibly pretty-printed over several lines
            return _structure_all([(0, orjson.loads(body))])
        except orjson.JSONDecodeError:
            pass  # not one document: treat as NDJSON
    lines: list[bytes] = []
    return attrs.evolve(_structure_all(_ndjson_items(body, lines)), lines=lines)


_JSON_SPACE = b" \t\r"  # with the newline, all that JSON counts as whitespace


def _ndjson_items(body: bytes, lines: list[bytes]) -> Iterator[tuple[int, Any]]:
    """(index, parsed line) of every non-blank line; ``lines`` gets each such line's text."""
    index = 0
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            obj = _Unparsable(f"not valid JSON: {exc}")
        lines.append(line.strip(_JSON_SPACE))
        yield index, obj
        index += 1


@attrs.frozen
class _Unparsable:
    reason: str


def _structure_all(items: Iterable[tuple[int, Any]]) -> DecodedBatch:
    events: list[Event] = []
    indexes: list[int] = []
    rejected: list[RejectedEvent] = []
    structure = _fast.structure
    for index, obj in items:
        try:
            events.append(structure(obj, Event))
            indexes.append(index)
            continue
        except Exception:  # noqa: BLE001 - explained precisely below
            pass
        event_id = obj.get("event_id") if type(obj) is dict else None
        if isinstance(obj, _Unparsable):
            problems = [Problem("$", obj.reason)]
        else:
            try:
                events.append(structure_event(obj))
                indexes.append(index)
                continue
            except EventDecodeError as exc:
                problems = exc.problems
        rejected.append(RejectedEvent(index, problems, event_id if type(event_id) is str else None))
    return DecodedBatch(events, rejected, indexes)


# -- encoding -----------------------------------------------------------------------------------


def unstructure_event(event: Event) -> dict[str, Any]:
    """The event as a dict for orjson (UUIDs and datetimes left as objects)."""
    unstructured: dict[str, Any] = _fast.unstructure(event)
    return unstructured


def encode_event(event: Event) -> bytes:
    """One event as compact JSON bytes."""
    return orjson.dumps(_fast.unstructure(event), option=_ORJSON_OPTS)


def encode_ndjson(events: Sequence[Event]) -> bytes:
    """Events as NDJSON: one compact JSON document per line, each line ending in a newline."""
    unstructure = _fast.unstructure
    return b"".join(
        orjson.dumps(unstructure(e), option=_ORJSON_OPTS | orjson.OPT_APPEND_NEWLINE)
        for e in events
    )


def encode_array(events: Sequence[Event]) -> bytes:
    """Events as one JSON array."""
    unstructure = _fast.unstructure
    return orjson.dumps([unstructure(e) for e in events], option=_ORJSON_OPTS)


def to_json_dict(event: Event) -> dict[str, Any]:
    """The event exactly as it goes on the wire, as plain JSON types (strings for ids, times)."""
    decoded: dict[str, Any] = orjson.loads(encode_event(event))
    return decoded
