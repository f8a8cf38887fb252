"""The ingest hot path: validate wire events once, in C, and keep their bytes.

``codec`` turns JSON into attrs ``Event`` objects and explains every fault; that costs ~15 µs
an event, too much for every hop. Here msgspec Structs mirror the JSON Schema (types, lengths,
patterns, ranges, cross-field rules in ``__post_init__``) and check an event in about a
microsecond without building the public model. What passes keeps its JSON text, so a host can
spool, forward or store the bytes it received. What fails is handed to ``codec`` for the
per-field report (and the rare input only the detailed path accepts, such as
``"schema_version": 1.0``, is accepted through it), so the verdicts are exactly the detailed
path's: a property test holds the two equal.

Bodies are read in slices (``BatchReader``): items and bytes are counted as each slice is
decoded, a body above the event cap is refused after at most one slice past the cap, and a host
yields to its event loop between slices, so no body, however hostile, holds the loop for long.

This module must never build an ``Event`` on the accepting path; ``WireEvent.to_event`` is for
callers that ask for objects.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from uuid import UUID

import attrs
import msgspec
import orjson
from msgspec import Meta, Raw

from .codec import RejectedEvent, encode_event, structure_event
from .errors import BatchDecodeError, EventDecodeError, Problem
from .events import (
    METADATA_MAX_BYTES,
    SCHEMA,
    App,
    Entity,
    ErrorInfo,
    Event,
    Metrics,
    Source,
)

_T = TypeVar("_T")


def _pattern(pointer: str) -> str:
    node: Any = SCHEMA
    for step in pointer.split("/"):
        node = node[step]
    pattern: str = node["pattern"]
    return pattern


def _max(pointer: str) -> int:
    node: Any = SCHEMA
    for step in pointer.split("/"):
        node = node[step]
    longest: int = node["maxLength"]
    return longest


Name = Annotated[str, Meta(min_length=1, max_length=_max("$defs/name"))]
Key = Annotated[str, Meta(min_length=1, max_length=_max("$defs/key"))]
Text64 = Annotated[str, Meta(max_length=64)]
Text256 = Annotated[str, Meta(max_length=256)]
ErrorType = Annotated[str, Meta(min_length=1, max_length=256)]
Message = Annotated[str, Meta(max_length=8192)]
Stack = Annotated[str, Meta(max_length=65536)]
NonNegative = Annotated[float, Meta(ge=0)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
# JSON has one number type: 4242.0 is the integer 4242, as the model says. Integral, and an int
# below _PID_LIMIT, are checked per slice.
Pid = Annotated[int, Meta(ge=0)] | Annotated[float, Meta(ge=0)]
#: From here on orjson reads an integer as a float and msgspec as an int: the two would differ.
_PID_LIMIT = 2**64

# The text patterns (ids, times, site ids) are checked once per slice of events over their
# joined text, not per field: a regex call per field would cost more than the whole decode.
_UUID = _pattern("$defs/uuid").removeprefix("^").removesuffix("$")
_UUID_RE = re.compile(_UUID, re.ASCII)
_TIME = _pattern("properties/time").removeprefix("^").removesuffix("$")
_TIME_RE = re.compile(_TIME, re.ASCII)
_TIMES = re.compile(f"(?:{_TIME}\n)*", re.ASCII)
_SITE_ID = re.compile(_pattern("$defs/site_id"), re.ASCII)
#: Metadata passes the quick check when it is an object of at most this many bytes of plain
#: text (no escapes, no exponents, ASCII): it cannot then exceed the byte cap once compacted (a
#: JSON number grows at most 4.5x, "1e15" -> 1000000000000000.0), nor nest as deep as the 255
#: levels orjson refuses to encode (each level takes two bytes), nor hold a number orjson
#: refuses as infinite (that takes 309 digits, or an exponent). Anything else is parsed,
#: encoded and measured exactly, as the model does.
_QUICK_METADATA = 300
assert _QUICK_METADATA * 5 < METADATA_MAX_BYTES


class _Struct(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, gc=False):
    pass


class WireApp(_Struct, frozen=True):
    name: Name
    version: Text64 | None = None
    app_id: Annotated[str, Meta(min_length=36, max_length=36)] | None = None  # and per slice


class _Entity(_Struct, frozen=True, tag_field="type"):
    id: Key
    business_key: Key | None = None
    sub_key: Key | None = None

    @property
    def type(self) -> str:
        return self.__struct_config__.tag  # type: ignore[return-value]


class JobEntity(_Entity, frozen=True, tag="job"):
    parent_id: Key | None = None


class SubjobEntity(_Entity, frozen=True, tag="subjob", kw_only=True):
    parent_id: Key  # a subjob names its job


WireEntity = JobEntity | SubjobEntity


class WireMetrics(_Struct, frozen=True):
    duration_s: NonNegative | None = None
    cpu_user_s: NonNegative | None = None
    cpu_system_s: NonNegative | None = None
    mem_max_mb: NonNegative | None = None
    progress: Fraction | None = None


class WireError(_Struct, frozen=True):
    type: ErrorType
    message: Message
    stack: Stack | None = None


class WireSource(_Struct, frozen=True):
    host: Text256 | None = None
    pid: Pid | None = None
    sdk: Text64 | None = None
    sdk_version: Text64 | None = None


_NO_METRICS = WireMetrics()
_NO_SOURCE = WireSource()
_EMPTY_OBJECT = Raw(b"{}")
#: Days seen valid ("2026-11-28"): the time pattern allows 02-31, fromisoformat does not.
_valid_days: set[str] = set()


class WireEvent(_Struct, frozen=True, tag_field="kind"):
    """One wire event that passed the fast checks; field names are the model's, values stay
    JSON-typed (ids and times as text, metadata as its raw JSON). One subclass per kind, so
    that "error exactly when failed" is a type rule checked in C."""

    schema_version: Literal[1]
    event_id: Annotated[str, Meta(min_length=36, max_length=36)]  # and per slice
    time: Annotated[str, Meta(min_length=20, max_length=27)]  # and per slice
    site_id: str  # checked per slice
    app: WireApp
    entity: WireEntity
    metrics: WireMetrics = _NO_METRICS
    metadata: Raw = _EMPTY_OBJECT
    source: WireSource = _NO_SOURCE

    @property
    def kind(self) -> str:
        return self.__struct_config__.tag  # type: ignore[return-value]

    def to_event(self) -> Event:
        """The public model of this event, equal to what ``codec`` decodes from its JSON.

        Built without running the model's validators again: this event passed the same rules.
        """
        app, entity, m, s = self.app, self.entity, self.metrics, self.source
        e = getattr(self, "error", None)
        return _make(
            Event,
            schema_version=1,
            event_id=UUID(self.event_id),
            kind=self.kind,
            time=datetime.fromisoformat(self.time),
            site_id=self.site_id,
            app=_make(
                App,
                name=app.name,
                version=app.version,
                app_id=None if app.app_id is None else UUID(app.app_id),
            ),
            entity=_make(
                Entity,
                type=entity.type,
                id=entity.id,
                parent_id=entity.parent_id,
                business_key=entity.business_key,
                sub_key=entity.sub_key,
            ),
            metrics=_EMPTY_METRICS
            if m is _NO_METRICS
            else _make(
                Metrics,
                duration_s=m.duration_s,
                cpu_user_s=m.cpu_user_s,
                cpu_system_s=m.cpu_system_s,
                mem_max_mb=m.mem_max_mb,
                progress=m.progress,
            ),
            metadata=orjson.loads(bytes(self.metadata)),
            error=None
            if e is None
            else _make(ErrorInfo, type=e.type, message=e.message, stack=e.stack),
            source=_EMPTY_SOURCE
            if s is _NO_SOURCE
            else _make(Source, host=s.host, pid=s.pid, sdk=s.sdk, sdk_version=s.sdk_version),
        )


class StartedEvent(WireEvent, frozen=True, tag="started"):
    error: None = None


class ProgressEvent(WireEvent, frozen=True, tag="progress"):
    error: None = None


class FinishedEvent(WireEvent, frozen=True, tag="finished"):
    error: None = None


class FailedEvent(WireEvent, frozen=True, tag="failed", kw_only=True):
    error: WireError  # required, and only here


AnyWireEvent = StartedEvent | ProgressEvent | FinishedEvent | FailedEvent


def _passes(events: Sequence[WireEvent]) -> bool:
    """The checks msgspec does not make, over a slice of decoded events at once.

    Each check runs over the slice's joined text with C-speed bytes operations (a regex per
    field would cost more than the decode itself); a slice that does not pass is checked again
    event by event, and only what fails alone is rejected. Joining has a cost of its own,
    which a few events (a single-event POST) do not repay: they take a regex per field.
    """
    if len(events) <= _FEW_EVENTS:
        return all(map(_event_passes, events))
    return (
        all(map(_pid_ok, {e.source.pid for e in events}))
        and _uuids_ok([e.event_id for e in events])
        and _times_ok([e.time for e in events])
        and all(_SITE_ID.fullmatch(site) for site in {e.site_id for e in events})
        and _uuids_ok([a for a in {e.app.app_id for e in events} if a is not None])
        and _metadatas_ok([e.metadata for e in events])
    )


#: Up to this many events, a regex per field costs less than joining their texts.
_FEW_EVENTS = 4


def _event_passes(event: WireEvent) -> bool:
    app_id = event.app.app_id
    return (
        _pid_ok(event.source.pid)
        and _UUID_RE.fullmatch(event.event_id) is not None
        and _TIME_RE.fullmatch(event.time) is not None
        and _days_ok((event.time[:10],))
        and _SITE_ID.fullmatch(event.site_id) is not None
        and (app_id is None or _UUID_RE.fullmatch(app_id) is not None)
        and _metadatas_ok([event.metadata])
    )


def _pid_ok(pid: float | None) -> bool:
    if type(pid) is int:
        return pid < _PID_LIMIT
    return pid is None or pid % 1 == 0


_HEX = b"0123456789abcdef"
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
#: Digits to 0 and E to e: an exponent (a digit, then e or E) is then the one text "0e".
_EXPONENTS = bytes.maketrans(b"123456789E", b"000000000e")


def _uuids_ok(ids: list[str]) -> bool:
    """Lower-case canonical UUIDs (8-4-4-4-12 hex digits)."""
    if not ids:
        return True
    try:
        text = "".join(ids).encode("ascii")
    except UnicodeEncodeError:
        return False
    n = len(ids)
    hyphen = b"-" * n
    return (
        (
            len(text) == 36 * n  # and each is 36 long: a msgspec constraint
            and text.translate(None, _HEX) == b"-" * (4 * n)
            and text[8::36] == hyphen
            and text[13::36] == hyphen
            and text[18::36] == hyphen
            and text[23::36] == hyphen
        )
        or all(_UUID_RE.fullmatch(i) for i in ids)
    )


def _times_ok(times: list[str]) -> bool:
    """RFC 3339 UTC times of the schema's pattern, on days that exist."""
    widths = set(map(len, times))
    if len(widths) == 1:
        days = _time_shapes_ok(times, widths.pop())
    else:  # e.g. a time on the second, written without a fraction
        days = set()
        for width in widths:
            found = _time_shapes_ok([t for t in times if len(t) == width], width)
            if found is None:
                return False
            days |= found
    return days is not None and _days_ok(days)


def _days_ok(days: Iterable[str]) -> bool:
    """Each "YYYY-MM-DD" a day that exists (the pattern allows 02-31); remembered once seen."""
    for day in days:
        if day in _valid_days:
            continue
        try:
            datetime.fromisoformat(day)
        except ValueError:
            return False
        if len(_valid_days) > 4096:
            _valid_days.clear()
        _valid_days.add(day)
    return True


def _time_shapes_ok(times: list[str], width: int) -> set[str] | None:
    """The days of times of one width, or None when one is not a time of the schema's pattern.

    Digits, the fixed characters and the ranges of hours, minutes and seconds are checked over
    the joined text at once, and a slice on one day (the usual case) is seen to be so without
    cutting out every day; anything odd takes the regex.
    """
    n = len(times)
    text = "\n".join(times).encode("ascii", "replace") + b"\n"
    step = width + 1
    shape = _TIME_SHAPES.get(width)
    hour_tens = text[11::step]
    quick = (
        shape is not None
        and text.translate(_DIGITS_TO_ZERO) == shape * n
        and max(hour_tens) <= 0x32
        and (b"2" not in hour_tens or all(t[11:13] <= "23" for t in times))
        and max(text[14::step]) <= 0x35  # minute tens
        and max(text[17::step]) <= 0x35  # second tens
    )
    if not quick and _TIMES.fullmatch(text.decode("ascii", "replace")) is None:
        return None
    if all(text[k::step] == text[k : k + 1] * n for k in range(10)):
        return {times[0][:10]}
    return {t[:10] for t in times}


#: Time text width -> its digits-as-zero shape plus the newline separator.
_FRACTIONS = ["", *("." + "0" * digits for digits in range(1, 7))]
_TIME_SHAPES = {
    len(shape): shape.encode() + b"\n"
    for shape in (f"0000-00-00T00:00:00{fraction}Z" for fraction in _FRACTIONS)
}


def _metadatas_ok(metadatas: list[Raw]) -> bool:
    """Each an object within the byte cap; short plain ones are sure to be (see above)."""
    joined = b"\x00".join(metadatas)
    quick = (
        max(map(len, metadatas)) <= _QUICK_METADATA
        and joined.isascii()
        and b"\\" not in joined
        and joined[:1] == b"{"
        and joined.count(b"\x00{") == len(metadatas) - 1
        and b"0e" not in joined.translate(_EXPONENTS)
    )
    return quick or all(_metadata_ok(bytes(m)) for m in metadatas)


def _metadata_ok(raw: bytes) -> bool:
    """The exact metadata rule: a JSON object (as orjson reads it) within the byte cap."""
    try:
        value = orjson.loads(raw)
        return type(value) is dict and len(orjson.dumps(value)) <= METADATA_MAX_BYTES
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # e.g. nested too deep to encode
        return False


_EMPTY_METRICS = Metrics()
_EMPTY_SOURCE = Source()


def _make(cls: type[_T], **values: Any) -> _T:
    """An attrs instance with these field values, skipping validators that already ran."""
    obj = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


_decode_one = msgspec.json.Decoder(AnyWireEvent).decode
_decode_array = msgspec.json.Decoder(list[AnyWireEvent]).decode
_decode_raw_items = msgspec.json.Decoder(list[Raw]).decode
_decode_raw = msgspec.json.Decoder(Raw).decode
_format = msgspec.json.format


def check(text: bytes) -> WireEvent | None:
    """The event in ``text`` if it passes the fast checks, else None."""
    try:
        event = _decode_one(text)
    except Exception:  # noqa: BLE001 - msgspec's errors, RecursionError: all mean "not fast"
        return None
    return event if _passes([event]) else None


def explain(index: int, text: bytes) -> WireEvent | RejectedEvent:
    """The detailed verdict on one item the fast path refused: why it is bad, or (rarely) its
    canonical form when the detailed path accepts it after all."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return RejectedEvent(index, [Problem("$", f"not valid JSON: {exc}")])
    try:
        event = structure_event(obj)
    except EventDecodeError as exc:
        event_id = obj.get("event_id") if type(obj) is dict else None
        return RejectedEvent(index, exc.problems, event_id if type(event_id) is str else None)
    # JSON's one number type lets 1.0 and 42.0 stand for integers: write them as such.
    pid = event.source.pid
    event = attrs.evolve(
        event,
        schema_version=1,
        source=attrs.evolve(
            event.source, pid=int(pid) if pid is not None and pid < _PID_LIMIT else pid
        ),
    )
    try:
        return _decode_one(encode_event(event))
    except Exception as exc:  # noqa: BLE001 - a disagreement the property tests look for
        problem = Problem("$", f"valid, but its canonical form cannot be read back ({exc})")
        return RejectedEvent(index, [problem], str(event.event_id))


def stored_event(text: bytes | str) -> Event:
    """The Event in JSON that was validated on its way into a store (the read path).

    Skips the checks that JSON passed when it was stored; text from elsewhere (an older
    version, a hand edit) that the fast decoder does not take goes through the detailed codec.
    """
    try:
        return _decode_one(text).to_event()
    except Exception:  # noqa: BLE001 - msgspec's errors: let the detailed codec judge it
        return structure_event(orjson.loads(text))


class WireBatch:
    """What an ingest body held: accepted events with their JSON text, and the rejected ones.

    ``lines[k]`` is the JSON of ``events[k]`` on one line, as received unless it had to be
    made single-line; ``indexes[k]`` its 0-based position in the body.

    The text is kept as the NDJSON slices of the body it came in and cut into lines only when
    ``lines`` is asked for: a host that spools or forwards the whole batch (``ndjson()``) never
    makes an object per line.

    Read with ``keep_events=False``, ``events`` and ``indexes`` stay empty and only ``count``
    and the text are kept: each slice's decoded events are freed as soon as they are checked,
    while they are still in the CPU's cache. A sidecar spooling the text measured 0.77 of the
    CPU per event it used when it kept them until the request ended.
    """

    def __init__(self, *, keep_events: bool = True) -> None:
        self.keeps_events = keep_events
        self.count = 0  # accepted events, kept or not
        self.events: list[WireEvent] = []
        self.indexes: list[int] = []
        self.rejected: list[RejectedEvent] = []
        self._texts: list[bytes] = []  # NDJSON, each ending in a newline, in event order
        self._lines: list[bytes] | None = None

    @property
    def total(self) -> int:
        return self.count + len(self.rejected)

    @property
    def lines(self) -> list[bytes]:
        if self._lines is None:
            self._lines = b"".join(self._texts).split(b"\n")[:-1]
        return self._lines

    @lines.setter
    def lines(self, lines: list[bytes]) -> None:
        self._lines = lines

    def ndjson(self) -> bytes:
        """The accepted events as NDJSON (a newline after each)."""
        if self._lines is not None:
            return b"".join(line + b"\n" for line in self._lines)
        return b"".join(self._texts)

    def extend(self, other: WireBatch) -> None:
        """Append ``other`` (read with its events kept), its positions moved past this batch's."""
        base = self.total
        self.count += other.count
        self.events += other.events
        self.lines = self.lines + other.lines
        self.indexes += [base + i for i in other.indexes]
        self.rejected += [attrs.evolve(r, index=base + r.index) for r in other.rejected]

    def _add(self, events: Sequence[WireEvent], text: bytes, first_index: int) -> None:
        """Add ``events`` read from ``text``, their lines (newline-terminated), the first one
        at body position ``first_index`` and the rest right after it."""
        self.count += len(events)
        self._texts.append(text)
        if self.keeps_events:
            self.events += events
            self.indexes += range(first_index, first_index + len(events))


class TooManyEvents(Exception):
    """The body holds more than the cap; ``seen`` counts the items read before stopping."""

    def __init__(self, cap: int, seen: int) -> None:
        super().__init__(f"more than {cap} events (stopped counting at {seen})")
        self.cap, self.seen = cap, seen


#: Bytes of body decoded per step; between steps a host lets other requests run.
SLICE_BYTES = 128 * 1024
#: The longest JSON text one event may have. The schema's own caps (a 64 Ki-character stack,
#: 16 KiB of metadata, ...) keep a real event far below this even fully escaped; a longer item
#: is refused unread, so no single item costs more than this much parsing.
MAX_EVENT_BYTES = 2**20
TOO_LONG = f"the event's JSON text is longer than {MAX_EVENT_BYTES} bytes"
#: A pretty-printed single event larger than this is read as NDJSON (and rejected line by line).
MAX_PRETTY_BYTES = 4 * SLICE_BYTES
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_NDJSON_LINE = re.compile(rb"^[ \t\r]*+([^ \t\r\n][^\n]*)", re.MULTILINE)


class BatchReader:
    """Decodes a body (an event, a JSON array, or NDJSON) one slice at a time.

    ``for _ in reader.steps(): await asyncio.sleep(0)`` decodes it all; ``reader.batch`` holds
    the result. Raises BatchDecodeError for a body unreadable as a whole, TooManyEvents as soon
    as more than ``max_events`` items are seen.
    """

    SLICE_BYTES: ClassVar[int] = SLICE_BYTES

    def __init__(self, body: bytes, max_events: int, *, keep_events: bool = True) -> None:
        self.body = body
        self.max_events = max_events
        self.batch = WireBatch(keep_events=keep_events)
        self._seen = 0

    def read_all(self) -> WireBatch:
        for _ in self.steps():
            pass
        return self.batch

    def steps(self) -> Iterator[None]:
        body = self.body
        if body[:1] == b"{" and body[-1:] == b"}" and b"\n" not in body and self._one(body):
            return  # a single-event POST: one valid event on one line, taken whole
        space = _LEADING_SPACE.match(body)  # always matches, maybe the empty string
        start = space.end() if space else 0
        first = body[start : start + 1]
        if not first:
            raise BatchDecodeError(
                [Problem("$", "empty body: expected an event, an array or NDJSON")]
            )
        if first == b"[":
            yield from self._array(start)
        elif first == b"{" and body.find(b"\n", start, _content_end(body)) != -1:
            yield from self._maybe_pretty(start)
        else:
            yield from self._ndjson()

    # -- shapes ---------------------------------------------------------------------------------

    def _maybe_pretty(self, start: int) -> Iterator[None]:
        """An object spanning lines is one pretty-printed event, or NDJSON when it is not.

        NDJSON's first line is a whole JSON value, which a pretty-printed object's first line
        never is (more than whitespace follows it): parsing that line alone spares parsing
        the whole body only to learn that it is NDJSON.
        """
        body = self.body
        if len(body) <= MAX_PRETTY_BYTES and not _is_json(body[start : body.find(b"\n", start)]):
            try:
                _decode_raw_items(b"[" + body + b"]")
            except (msgspec.DecodeError, RecursionError):
                pass
            else:
                self._count(1)
                self._items([_format(body, indent=-1)])
                return
        yield from self._ndjson()

    def _ndjson(self) -> Iterator[None]:
        body, end = self.body, len(self.body)
        pos = 0  # '^' matches only at line starts: begin at one
        while pos < end:
            if end - pos > MAX_EVENT_BYTES and body.find(b"\n", pos, pos + MAX_EVENT_BYTES) == -1:
                pos = self._too_long_line(pos)
                yield
                continue
            cut = body.find(b"\n", min(pos + self.SLICE_BYTES, end))
            cut = end if cut == -1 else cut + 1
            if cut - pos > self.SLICE_BYTES + MAX_EVENT_BYTES:  # a long line ends this slice
                cut = body.rfind(b"\n", pos, pos + self.SLICE_BYTES) + 1
            chunk = body[pos:cut]
            pos = cut
            if b"\r" in chunk or not self._slice(chunk if chunk[-1:] == b"\n" else chunk + b"\n"):
                # Blank lines (an attack, or just CRLF) are not items: count them out exactly.
                lines = _nonblank_lines(chunk)
                self._count(len(lines))
                self._items(lines)
            yield

    def _too_long_line(self, pos: int) -> int:
        """Refuse the line at ``pos`` (longer than any event) unread; where the next begins."""
        body = self.body
        cut = body.find(b"\n", pos)
        cut = len(body) if cut == -1 else cut
        if not body[pos:cut].isspace():
            self._count(1)
            self.batch.rejected.append(RejectedEvent(self.batch.total, [Problem("$", TOO_LONG)]))
        return cut + 1

    def _array(self, start: int) -> Iterator[None]:
        """Split the array at top-level commas into slices, each parsed as an array of its own.

        A comma inside a string or a nested value leaves the slice unbalanced, so it does not
        parse; the slice then grows (doubling) to a later comma, or to the end of the array.
        """
        body = self.body
        end = _content_end(body)
        if body[end - 1 : end] != b"]" or end - start < 2:
            raise BatchDecodeError([Problem("$", "not valid JSON: the array is not closed")])
        end -= 1  # the closing bracket
        pos = start + 1
        if not body[pos:end].strip():
            return
        while pos < end:
            cut = (
                body.find(b"},{", pos + self.SLICE_BYTES, end)
                if pos + self.SLICE_BYTES < end
                else -1
            )
            stop = end if cut == -1 else cut + 1
            if stop - pos <= self.SLICE_BYTES + MAX_EVENT_BYTES and self._compact_slice(
                body[pos:stop]
            ):
                pos = end if cut == -1 else cut + 2
                yield
                continue
            span = self.SLICE_BYTES
            while True:
                cut = body.find(b",", pos + span, end) if pos + span < end else -1
                stop = end if cut == -1 else cut
                try:
                    items = _decode_raw_items(b"[" + body[pos:stop] + b"]")
                    break
                except (msgspec.DecodeError, RecursionError) as exc:
                    if cut == -1:
                        reason = (
                            "the body nests too deeply" if isinstance(exc, RecursionError) else exc
                        )
                        raise BatchDecodeError(
                            [Problem("$", f"not valid JSON: {reason}")]
                        ) from None
                    span = (cut - pos) * 2
                    yield  # a failed attempt is work too
            self._count(len(items))
            self._items([_single_line(bytes(item)) for item in items])
            pos = end if cut == -1 else cut + 1
            yield

    # -- items ----------------------------------------------------------------------------------

    def _count(self, items: int) -> None:
        self._seen += items
        if self._seen > self.max_events:
            raise TooManyEvents(self.max_events, self._seen)

    def _one(self, text: bytes) -> bool:
        """Add ``text`` if it is one valid event (no slicing, no array around it); False,
        and nothing added, when it needs the general path (which also says what is wrong)."""
        event = check(text) if len(text) <= MAX_EVENT_BYTES else None
        if event is None:
            return False
        self._count(1)
        self.batch._add((event,), text + b"\n", 0)
        return True

    def _slice(self, text: bytes) -> bool:
        """Add NDJSON lines (each ending in a newline) if every line is one valid event.

        The lines are read as one JSON array, their newlines turned into commas: a blank line
        or two values on one line then cannot parse, so what parses has one event per line,
        without cutting the text into lines (that costs more than the checks). False, and
        nothing added, when the slice needs the line-by-line path.
        """
        try:
            events = _decode_array(b"[" + text[:-1].replace(b"\n", b",") + b"]")
        except Exception:  # noqa: BLE001 - msgspec's errors, RecursionError: not all valid
            return False
        if not events:  # only spaces
            return True
        self._count(len(events))
        if not _passes(events):
            self._seen -= len(events)  # counted again, line by line
            return False
        self.batch._add(events, text, self.batch.total)
        return True

    def _compact_slice(self, text: bytes) -> bool:
        """Add a slice of array items written without line breaks or spaces between them
        (``{...},{...}``, as JSON encoders write them by default) if every item is a valid
        event; False, and nothing added, when the slice needs the item-by-item path.

        The slice is decoded as the events' array at once, and each event's text is what lies
        between the separators, with no second parse to find them. Between n items there are
        n - 1 separators: ``}``, a comma and ``{``, with only spaces and tabs around the comma.
        With those deleted, a text holding exactly n - 1 ``},{`` has no separator-like text
        inside a value (a string, nested metadata), so the n - 1 ``},{`` cut at are the right
        ones.
        """
        if text.find(b"},{", 0, 16 * 1024) == -1:  # spaced out, or one big item: not compact
            return False
        text = text.strip(b" \t")
        if b"\n" in text or b"\r" in text:
            return False
        try:
            events = _decode_array(b"[" + text + b"]")
        except Exception:  # noqa: BLE001 - msgspec's errors, RecursionError: not all valid
            return False
        n = len(events)
        lines = text.replace(b"},{", b"}\n{") + b"\n"
        if lines.count(b"\n") != n:
            return False
        if (b" " in text or b"\t" in text) and _separators(text) != n - 1:
            return False  # some cut inside a value, and some separator was not cut
        self._count(n)
        if not _passes(events):
            self._seen -= n  # counted again, item by item
            return False
        self.batch._add(events, lines, self.batch.total)
        return True

    def _items(self, texts: list[bytes]) -> None:
        """Add the items ``texts`` (single-line JSON texts)."""
        if not texts:
            return
        if max(map(len, texts)) <= MAX_EVENT_BYTES:
            # The common case: every item is valid. Any fault is sorted out one by one below.
            events = None
            with contextlib.suppress(Exception):
                events = _decode_array(b"[" + b",".join(texts) + b"]")
            if events is not None and _passes(events):
                self.batch._add(events, b"\n".join(texts) + b"\n", self.batch.total)
                return
        batch = self.batch
        index = batch.total
        for offset, text in enumerate(texts):
            if len(text) > MAX_EVENT_BYTES:
                batch.rejected.append(RejectedEvent(index + offset, [Problem("$", TOO_LONG)]))
                continue
            event = check(text)
            if event is None:
                verdict = explain(index + offset, text)
                if isinstance(verdict, RejectedEvent):
                    batch.rejected.append(verdict)
                    continue
                event, text = verdict, msgspec.json.encode(verdict)
            batch._add([event], text + b"\n", index + offset)


def _is_json(text: bytes) -> bool:
    try:
        _decode_raw(text)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def _content_end(body: bytes) -> int:
    """Where the body ends without its trailing JSON whitespace (without copying it, usually)."""
    end = len(body)
    for _ in range(64):
        if not end or body[end - 1] not in b" \t\r\n":
            return end
        end -= 1
    return len(body.rstrip(b" \t\r\n"))


def _separators(text: bytes) -> int:
    """How many ``},{`` the text holds once its spaces and tabs are deleted."""
    text = text.replace(b" ", b"")
    if b"\t" in text:
        text = text.replace(b"\t", b"")
    return text.count(b"},{")


def _nonblank_lines(chunk: bytes) -> list[bytes]:
    """The NDJSON lines that hold something, without their surrounding whitespace."""
    return [line.rstrip(b" \t\r") for line in _NDJSON_LINE.findall(chunk)]


def _single_line(text: bytes) -> bytes:
    """An array item as one NDJSON line: compacted only when it spans lines."""
    return _format(text, indent=-1) if b"\n" in text or b"\r" in text else text


def read_batch(body: bytes, max_events: int = 2**62) -> WireBatch:
    """Decode a whole body at once (for callers without an event loop to share)."""
    return BatchReader(body, max_events).read_all()
