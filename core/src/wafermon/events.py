"""The wire event as Python objects: attrs classes that validate themselves.

The JSON Schema in ``schemas/event.v1.schema.json`` is the contract; these classes mirror it
field for field, and a property test holds the two equal. Constructing an instance validates it,
so an event built in Python is as trustworthy as one decoded from JSON. Validators raise
``FieldValueError`` naming the field, which the codec turns into a JSON path.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, cast
from uuid import UUID

import attrs
import orjson

from .errors import FieldValueError, type_name

#: The JSON Schema, the contract; the limits and patterns below are read from it.
SCHEMA: dict[str, Any] = json.loads(
    resources.files(__package__).joinpath("schemas/event.v1.schema.json").read_text("utf-8")
)
SCHEMA_VERSION: int = SCHEMA["properties"]["schema_version"]["const"]
METADATA_MAX_BYTES: int = SCHEMA["properties"]["metadata"]["x-wafermon-max-bytes"]


def schema_pattern(pointer: str) -> re.Pattern[str]:
    """A pattern from the schema, e.g. ``$defs/uuid``, compiled for ``fullmatch``."""
    node: Any = SCHEMA
    for step in pointer.split("/"):
        node = node[step]
    return re.compile(node["pattern"].removeprefix("^").removesuffix("$"), re.ASCII)


SITE_ID_PATTERN = schema_pattern("$defs/site_id")
_ZERO = timedelta(0)


class Kind(enum.StrEnum):
    """Lifecycle step an event reports. New kinds arrive with a new schema version."""

    STARTED = "started"
    PROGRESS = "progress"
    FINISHED = "finished"
    FAILED = "failed"


class EntityType(enum.StrEnum):
    JOB = "job"
    SUBJOB = "subjob"


KINDS = frozenset(Kind)
ENTITY_TYPES = frozenset(EntityType)


# -- validators: each raises FieldValueError(field, reason) --------------------------------------

Validator = Callable[[object, "attrs.Attribute[Any]", object], None]


def _text(max_len: int, *, min_len: int = 0, optional: bool = False) -> Validator:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if type(value) is not str:
            raise FieldValueError(attribute.name, f"expected a string, got {type_name(value)}")
        if not min_len <= len(value) <= max_len:
            if min_len and not value:
                raise FieldValueError(attribute.name, "must not be empty")
            raise FieldValueError(attribute.name, f"longer than {max_len} characters")

    return check


def _number(*, maximum: float | None = None) -> Validator:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if type(value) not in (int, float):
            raise FieldValueError(attribute.name, f"expected a number, got {type_name(value)}")
        value = cast(float, value)
        if not math.isfinite(value) or value < 0 or (maximum is not None and value > maximum):
            bound = f"between 0 and {maximum}" if maximum is not None else "a finite number >= 0"
            raise FieldValueError(attribute.name, f"must be {bound}, got {value!r}")

    return check


def _uuid(optional: bool = False) -> Validator:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if type(value) is not UUID:
            raise FieldValueError(attribute.name, f"expected a UUID, got {type_name(value)}")

    return check


def _one_of(allowed: frozenset[str]) -> Validator:
    choices = ", ".join(sorted(allowed))

    def check(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed or type(value) not in (str, Kind, EntityType):
            raise FieldValueError(attribute.name, f"must be one of {choices}, got {value!r}")

    return check


def _site_id(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not str or not SITE_ID_PATTERN.fullmatch(value):
        raise FieldValueError(
            attribute.name,
            f"must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit, "
            f"got {value!r}",
        )


def _utc_time(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not datetime or (value.tzinfo is not UTC and value.utcoffset() != _ZERO):
        raise FieldValueError(attribute.name, "must be a timezone-aware datetime in UTC")


def _metadata(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) is not dict:
        raise FieldValueError(attribute.name, f"expected an object, got {type_name(value)}")
    if not value:
        return
    try:
        size = len(orjson.dumps(value))
    except TypeError as exc:
        raise FieldValueError(attribute.name, f"not JSON-serialisable: {exc}") from None
    if size > METADATA_MAX_BYTES:
        raise FieldValueError(
            attribute.name, f"{size} bytes of JSON, above the cap of {METADATA_MAX_BYTES}"
        )


# -- the model ----------------------------------------------------------------------------------


@attrs.frozen
class App:
    """The application that runs the job."""

    name: str = attrs.field(validator=_text(128, min_len=1))
    version: str | None = attrs.field(default=None, validator=_text(64, optional=True))
    app_id: UUID | None = attrs.field(default=None, validator=_uuid(optional=True))


@attrs.frozen
class Entity:
    """The job or subjob an event is about. A subjob names its job in ``parent_id``."""

    type: str = attrs.field(validator=_one_of(ENTITY_TYPES))
    id: str = attrs.field(validator=_text(256, min_len=1))
    parent_id: str | None = attrs.field(
        default=None, validator=_text(256, min_len=1, optional=True)
    )
    business_key: str | None = attrs.field(
        default=None, validator=_text(256, min_len=1, optional=True)
    )
    sub_key: str | None = attrs.field(default=None, validator=_text(256, min_len=1, optional=True))

    def __attrs_post_init__(self) -> None:
        if self.type == EntityType.SUBJOB and self.parent_id is None:
            raise FieldValueError("parent_id", "required when type is 'subjob'")


@attrs.frozen
class Metrics:
    """Resource figures, all optional; seconds and megabytes."""

    duration_s: float | None = attrs.field(default=None, validator=_number())
    cpu_user_s: float | None = attrs.field(default=None, validator=_number())
    cpu_system_s: float | None = attrs.field(default=None, validator=_number())
    mem_max_mb: float | None = attrs.field(default=None, validator=_number())
    progress: float | None = attrs.field(default=None, validator=_number(maximum=1))


@attrs.frozen
class ErrorInfo:
    """What went wrong, on a ``failed`` event."""

    type: str = attrs.field(validator=_text(256, min_len=1))
    message: str = attrs.field(validator=_text(8192))
    stack: str | None = attrs.field(default=None, validator=_text(65536, optional=True))


def _pid(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # JSON has one number type: 4242.0 is the integer 4242, as JSON Schema's "integer" says.
    number = cast(float, value)  # checked first: exactly int or float (no bool)
    if value is not None and (type(value) not in (int, float) or number < 0 or number % 1):
        raise FieldValueError(attribute.name, f"expected an integer >= 0, got {value!r}")


@attrs.frozen
class Source:
    """Where the event was made: host, process and the SDK that made it."""

    host: str | None = attrs.field(default=None, validator=_text(256, optional=True))
    pid: int | None = attrs.field(default=None, validator=_pid)
    sdk: str | None = attrs.field(default=None, validator=_text(64, optional=True))
    sdk_version: str | None = attrs.field(default=None, validator=_text(64, optional=True))


def _schema_version(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if type(value) not in (int, float) or value != SCHEMA_VERSION:
        raise FieldValueError(
            attribute.name, f"unsupported version {value!r}; this build speaks {SCHEMA_VERSION}"
        )


@attrs.frozen(kw_only=True)
class Event:
    """One lifecycle event: the unit every hop stores, forwards and deduplicates by ``event_id``."""

    # Defaulted for Python callers, but required on the wire (see codec.WIRE_REQUIRED).
    schema_version: int = attrs.field(
        default=SCHEMA_VERSION, validator=_schema_version, metadata={"wire_required": True}
    )
    event_id: UUID = attrs.field(validator=_uuid())
    kind: str = attrs.field(validator=_one_of(KINDS))
    time: datetime = attrs.field(validator=_utc_time)
    site_id: str = attrs.field(validator=_site_id)
    app: App = attrs.field(validator=attrs.validators.instance_of(App))
    entity: Entity = attrs.field(validator=attrs.validators.instance_of(Entity))
    # Frozen, so one shared empty instance serves every event without metrics or source.
    metrics: Metrics = attrs.field(
        default=Metrics(), validator=attrs.validators.instance_of(Metrics)
    )
    metadata: dict[str, Any] = attrs.field(factory=dict, validator=_metadata)
    error: ErrorInfo | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(ErrorInfo))
    )
    source: Source = attrs.field(default=Source(), validator=attrs.validators.instance_of(Source))

    def __attrs_post_init__(self) -> None:
        if self.kind == Kind.FAILED and self.error is None:
            raise FieldValueError("error", "required when kind is 'failed'")
        if self.kind != Kind.FAILED and self.error is not None:
            raise FieldValueError("error", "only allowed when kind is 'failed'")

    @property
    def sort_key(self) -> tuple[datetime, UUID]:
        """Total order used by every query: time, then event_id to break ties."""
        return (self.time, self.event_id)
