"""OpenAPI component schemas of the alerting API (the operations are on the handlers): the
answers' are generated from the Structs of ``bodies``; the request bodies (a monitor, a
silence) are written here."""

from __future__ import annotations

from typing import Any

from ...common.bodies import schemas
from .bodies import TYPES

_TIME = {"type": "string", "format": "date-time"}
_NSTR = {"type": ["string", "null"]}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_DURATION = {"type": ["string", "number", "null"], "description": "30, 30s, 5m, 1h or 2d"}
_SCHEDULE = {
    "type": "object",
    "description": "Exactly one of every (an interval) or cron (with a time zone).",
    "properties": {
        "every": _DURATION,
        "cron": {"type": "string", "description": "Five-field cron expression."},
        "timezone": {"type": "string", "description": "IANA zone (default UTC)."},
    },
}
_SPEC_PROPS: dict[str, Any] = {
    "name": {"type": "string"},
    "site_id": _NSTR,
    "app": {"type": "string"},
    "business_key": {"type": ["string", "null"], "description": "fnmatch pattern, e.g. lot-*"},
    "schedule": _SCHEDULE,
    "grace": _DURATION,
    "max_runtime": _DURATION,
    "min_runtime": _DURATION,
    "failures_to_alert": {"type": "integer", "minimum": 1},
    "successes_to_resolve": {"type": "integer", "minimum": 1},
    "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
    "notifiers": {"type": ["array", "null"], "items": {"type": "string"}},
}

ALERT_SCHEMAS: dict[str, Any] = {
    **schemas(*TYPES),
    "MonitorSpec": {"type": "object", "required": ["app", "schedule"], "properties": _SPEC_PROPS},
    "SilenceRequest": {
        "type": "object",
        "required": ["matchers", "author", "reason"],
        "properties": {
            "matchers": {**_LABELS, "description": "label: fnmatch pattern; all must match"},
            "author": {"type": "string"},
            "reason": {"type": "string"},
            "starts_at": _TIME,
            "ends_at": _TIME,
            "duration": _DURATION,
        },
    },
}
