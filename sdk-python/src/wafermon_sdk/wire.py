"""Turning what callers hand the SDK into wire events (NDJSON lines), off the caller's thread.

The caller's thread only enqueues a small record (a ``Lifecycle``, or an event it was given); the
shipper thread calls ``encode`` here to make the event: an event_id, the time as RFC 3339,
the entity, app and source parts validated once when the job started. The output is checked
against the core's codec in the tests (``wafermon.decode_batch`` accepts every line), so the
wire contract stays the core's. Metadata that cannot be sent as it is never costs the
lifecycle event: unknown value types are sent as their ``str()``, and metadata above the
schema's byte cap is replaced by a note saying so.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from wafermon import App, Entity, Event, encode_event, structure_event
from wafermon.events import METADATA_MAX_BYTES, SCHEMA_VERSION

SDK_NAME = "python"
#: The package's version: its events' ``source.sdk_version``, the sidecar requests' User-Agent.
SDK_VERSION = "0.1.0"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OPTS = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
#: Schema limits of the error object; longer text is cut (a stack keeps its end).
ERROR_TYPE_MAX, ERROR_MESSAGE_MAX, ERROR_STACK_MAX = 256, 8192, 65536
TRUNCATED_KEY = "wafermon_sdk_truncated"


class Lifecycle(NamedTuple):
    """A job's or subjob's lifecycle event as the caller's thread queues it: only what changes
    per event, next to the ``head`` built once per job; ``encode`` makes the wire JSON later,
    on the shipper thread. The queue holds these, ``Event``s and wire-form dicts."""

    head: Mapping[str, Any]  # ``head()``: site, app, entity, source
    kind: str  # started | progress | finished | failed
    time_ns: int  # time.time_ns() when it happened
    metrics: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None
    error: Mapping[str, str] | None = None


def _json_default(value: Any) -> str:
    return str(value)


_host: tuple[int, str] | None = None

# Ids: UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits from the
# OS's CSPRNG. Time-ordered ids keep the stores' event_id indexes local; CSPRNG bits make them
# unguessable, so no one can pre-empt an id (ids are the idempotency key on every hop). The
# random bytes are read 4 KiB at a time (a system call per id would cost about 4 µs), and the
# buffer is dropped in every forked child, so parent and child never share bytes.
_POOL_BYTES = 4096
_pool = b""
_pos = 0
_pool_lock = threading.Lock()


def _drop_pool() -> None:
    global _pool, _pos, _pool_lock
    _pool, _pos, _pool_lock = b"", 0, threading.Lock()


os.register_at_fork(after_in_child=_drop_pool)


def _random80() -> int:
    """80 bits from the OS's CSPRNG."""
    global _pool, _pos
    with _pool_lock:
        if _pos + 10 > len(_pool):
            _pool, _pos = os.urandom(_POOL_BYTES), 0
        chunk = _pool[_pos : _pos + 10]
        _pos += 10
    return int.from_bytes(chunk)


def new_id() -> str:
    """A UUID version 7 (RFC 9562 variant) as lower-case text."""
    r = _random80()
    value = (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76
        | (r >> 62 & 0xFFF) << 64  # rand_a
        | 0b10 << 62  # variant
        | (r & 0x3FFF_FFFF_FFFF_FFFF)  # rand_b
    )
    h = "%032x" % value  # noqa: UP031 - the fastest way to hex-format an int here
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def source(sdk_version: str) -> dict[str, Any]:
    """The ``source`` object for events made in this process now (pid changes after fork)."""
    global _host
    pid = os.getpid()
    if _host is None or _host[0] != pid:
        _host = (pid, socket.gethostname()[:256])
    return {"host": _host[1], "pid": pid, "sdk": SDK_NAME, "sdk_version": sdk_version}


# By id, holding the App itself so the id cannot be reused; hashing an attrs App is slow.
_app_json: dict[int, tuple[App, dict[str, Any]]] = {}


def app_json(app: App) -> dict[str, Any]:
    """The wire form of an App (cached: a program has few)."""
    cached = _app_json.get(id(app))
    if cached is not None and cached[0] is app:
        return cached[1]
    found: dict[str, Any] = {"name": app.name}
    if app.version is not None:
        found["version"] = app.version
    if app.app_id is not None:
        found["app_id"] = str(app.app_id)
    if len(_app_json) < 1024:
        _app_json[id(app)] = (app, found)
    return found


def head(site_id: str, app: App, entity: Entity, sdk_version: str) -> dict[str, Any]:
    """The parts every event of one job shares, as wire JSON (validated attrs objects in)."""
    entity_json = {"type": str(entity.type), "id": entity.id}
    for name in ("parent_id", "business_key", "sub_key"):
        if getattr(entity, name) is not None:
            entity_json[name] = getattr(entity, name)
    return {
        "schema_version": SCHEMA_VERSION,
        "site_id": site_id,
        "app": app_json(app),
        "entity": entity_json,
        "source": source(sdk_version),
    }


class Rejected(ValueError):
    """A record that cannot become a valid event; the message says why."""


def encode(record: Lifecycle | Event | dict[str, Any]) -> tuple[bytes, bool]:
    """One queue record as an NDJSON line, and whether its metadata had to be cut."""
    if type(record) is Lifecycle:
        return _lifecycle(record)
    if isinstance(record, Event):
        return encode_event(record) + b"\n", False
    try:
        event: Event = structure_event(record)
    except ValueError as exc:
        raise Rejected(str(exc)) from None
    return encode_event(event) + b"\n", False


def _lifecycle(record: Lifecycle) -> tuple[bytes, bool]:
    job_head, kind, time_ns, metrics, metadata, error = record
    doc = {
        "event_id": new_id(),
        "kind": kind,
        "time": _EPOCH + timedelta(microseconds=time_ns // 1000),
        **job_head,
    }
    if metrics:
        doc["metrics"] = metrics
    if metadata:
        doc["metadata"] = metadata
    if error is not None:
        doc["error"] = error
    line = orjson.dumps(doc, default=_json_default, option=_OPTS)
    if metadata and len(line) > METADATA_MAX_BYTES:
        size = len(orjson.dumps(metadata, default=_json_default, option=orjson.OPT_NON_STR_KEYS))
        if size > METADATA_MAX_BYTES:
            doc["metadata"] = {
                TRUNCATED_KEY: f"metadata of {size} bytes was above the {METADATA_MAX_BYTES}-byte "
                "cap and was dropped"
            }
            return orjson.dumps(doc, option=_OPTS), True
    return line, False


def error_info(exc: BaseException, stack: str) -> dict[str, str]:
    """The ``error`` object for a failed event: type, message and traceback within the limits."""
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    message = str(exc)
    if len(stack) > ERROR_STACK_MAX:
        stack = "...\n" + stack[-(ERROR_STACK_MAX - 4) :]
    return {
        "type": name[:ERROR_TYPE_MAX],
        "message": message[:ERROR_MESSAGE_MAX],
        "stack": stack,
    }


def event_id_of(line: bytes) -> str | None:
    """The event_id of an encoded line (for logs about a rejected event)."""
    try:
        value = orjson.loads(line).get("event_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def check_metadata(metadata: Mapping[str, Any] | None, what: str = "metadata") -> dict[str, Any]:
    """A caller's metadata as a plain dict; TypeError if it is not a mapping with str keys."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"{what} must be a mapping, got {type(metadata).__name__}")
    return dict(metadata)
