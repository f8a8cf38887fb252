"""wafermon-core: the event contract, the plugin system, site config and the ``wafermon`` CLI.

A plugin imports what it needs from here::

    from wafermon import hookimpl, Emitter, Event, RetryableError, PermanentError

The wire event's JSON Schema ships inside this package (``schema_path()``) and is the contract
every SDK is tested against.
"""

from importlib import resources
from pathlib import Path

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("wafermon")

from .batch import EventBatch, ndjson_of  # noqa: E402
from .codec import (  # noqa: E402 - hookimpl must exist before plugins import this package
    DecodedBatch,
    RejectedEvent,
    decode_batch,
    decode_event,
    encode_array,
    encode_event,
    encode_ndjson,
    structure_event,
    to_json_dict,
)
from .config import ByteSize, Seconds, Secret, describe, strip_credentials  # noqa: E402
from .errors import (  # noqa: E402
    BatchDecodeError,
    ConfigError,
    EmitterError,
    EventDecodeError,
    FieldValueError,
    InvalidInput,
    PermanentError,
    PluginError,
    Problem,
    RetryableError,
    WafermonError,
)
from .events import App, Entity, EntityType, ErrorInfo, Event, Kind, Metrics, Source  # noqa: E402
from .interfaces import (  # noqa: E402
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_WHERE_HEADER,
    Alert,
    Emitter,
    Health,
    Notifier,
    Query,
    QueryAdapter,
    QueryResult,
    StreamBatch,
    StreamConsumer,
    StreamMessage,
    TrendQuery,
    TrendSeries,
    TrendSource,
)
from .pages import decode_cursor, encode_cursor, merge_pages, pack_cursor, unpack_cursor  # noqa: E402


def schema_path() -> Path:
    """Filesystem path of the wire event's JSON Schema (version 1)."""
    return Path(str(resources.files(__name__) / "schemas" / "event.v1.schema.json"))


__all__ = [
    "DEAD_LETTER_REASON_HEADER",
    "DEAD_LETTER_WHERE_HEADER",
    "Alert",
    "App",
    "BatchDecodeError",
    "ByteSize",
    "ConfigError",
    "DecodedBatch",
    "Emitter",
    "EmitterError",
    "Entity",
    "EntityType",
    "ErrorInfo",
    "Event",
    "EventBatch",
    "EventDecodeError",
    "FieldValueError",
    "Health",
    "InvalidInput",
    "Kind",
    "Metrics",
    "Notifier",
    "PermanentError",
    "PluginError",
    "Problem",
    "Query",
    "QueryAdapter",
    "QueryResult",
    "RejectedEvent",
    "RetryableError",
    "Seconds",
    "Secret",
    "Source",
    "StreamBatch",
    "StreamConsumer",
    "StreamMessage",
    "TrendQuery",
    "TrendSeries",
    "TrendSource",
    "WafermonError",
    "decode_batch",
    "decode_cursor",
    "decode_event",
    "describe",
    "encode_array",
    "encode_cursor",
    "encode_event",
    "encode_ndjson",
    "hookimpl",
    "merge_pages",
    "ndjson_of",
    "pack_cursor",
    "schema_path",
    "strip_credentials",
    "structure_event",
    "to_json_dict",
    "unpack_cursor",
]
