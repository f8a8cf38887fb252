"""Structured logs: one JSON object per line on stderr, for the host and every library in it.

structlog renders our own events; the standard library's records (plugins, Hypercorn) go
through the same processors via ``ProcessorFormatter``, so a log shipper sees one format.
Values under secret-looking keys (token, password, authorization ...) are masked by the last
processor before rendering, and credentials in URLs inside any string value (messages,
tracebacks) are stripped, as a safety net: hosts never log tokens on purpose either.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from wafermon import strip_credentials
from wafermon.config import SECRET_KEY

_configured = False
#: Where access lines go once logging is configured (the root handler's stream), else None.
_access_stream: TextIO | None = None
ACCESS_LOGGER = "wafermon_hosts.access"


def _mask_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if key != "event" and SECRET_KEY.search(key) and value not in (None, ""):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = strip_credentials(value)  # URLs in messages and tracebacks
    return event


def _dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str, option=orjson.OPT_UTC_Z).decode()


def configure_logging(
    level: str | int = "INFO", *, stream: TextIO | None = None, force: bool = False
) -> None:
    """Route structlog and stdlib logging to JSON lines on ``stream`` (stderr).

    Called once per process by the host command; ``force`` lets tests reconfigure it.
    """
    global _configured, _access_stream
    if _configured and not force:
        return
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # tracebacks as one "exception" string
            _mask_secrets,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    _access_stream = handler.stream
    _configured = True


_access_log = structlog.stdlib.get_logger(ACCESS_LOGGER)
_access_std = logging.getLogger(ACCESS_LOGGER)


def log_request(fields: dict[str, Any]) -> None:
    """One access line, the same JSON the processors above would render for
    ``log.info("request", **fields)``.

    Written straight to the stream: the full logging path costs more than the rest of a small
    request's own work. The fields are the observer's (route template, status, ids, duration):
    none can hold a secret or a credential URL, so the masking processor has nothing to do.
    """
    stream = _access_stream
    if stream is None:  # logging not configured here (tests, embedding): the usual path
        _access_log.info("request", **fields)
        return
    if not _access_std.isEnabledFor(logging.INFO):
        return
    fields["event"] = "request"
    fields["level"] = "info"
    fields["logger"] = ACCESS_LOGGER
    fields["timestamp"] = _timestamp()
    stream.write(orjson.dumps(fields).decode() + "\n")
    stream.flush()


_second = (0, "")  # the last whole second _timestamp wrote, and its text


def _timestamp() -> str:
    """Now, as structlog's TimeStamper(fmt="iso", utc=True) writes it (always microseconds,
    then Z); the text of the second is made once per second."""
    global _second
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    if seconds != _second[0]:
        _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_second[1]}.{nanos // 1000:06d}Z"


def get_logger(name: str) -> Any:
    """A structlog logger; ``log.info("event", key=value)`` writes one JSON line."""
    return structlog.stdlib.get_logger(name)
