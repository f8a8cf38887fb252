"""OpenAPI component schemas of the alerting API (the operations are on the handlers)."""

from __future__ import annotations

from typing import Any

from ...common.openapi import ref

_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"type": ["string", "null"], "format": "date-time"}
_NSTR = {"type": ["string", "null"]}
_NNUM = {"type": ["number", "null"]}
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
_RUN = {
    "type": "object",
    "properties": {
        "job_id": {"type": "string"},
        "status": {"type": "string", "enum": ["running", "finished", "failed"]},
        "started_at": _TIME,
        "finished_at": _NTIME,
        "duration_s": _NNUM,
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
    "Alert": {
        "type": "object",
        "required": ["fingerprint", "rule", "severity", "status", "labels", "starts_at"],
        "properties": {
            "fingerprint": {"type": "string"},
            "rule": {"type": "string"},
            "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
            "status": {"type": "string", "enum": ["firing", "resolved"]},
            "summary": {"type": "string"},
            "description": {"type": "string"},
            "site_id": _NSTR,
            "labels": _LABELS,
            "starts_at": _TIME,
            "ends_at": _NTIME,
            "last_notified_at": _NTIME,
            "silenced_by": _NSTR,
            "inhibited": {"type": "boolean"},
            "notifications": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "notifier": {"type": "string"},
                        "at": _TIME,
                        "attempt": {"type": "integer"},
                        "ok": {"type": "boolean"},
                        "error": _NSTR,
                    },
                },
            },
            "transitions": {
                "type": "array",
                "description": "Only in GET /v1/alerts/{fingerprint}.",
                "items": {
                    "type": "object",
                    "properties": {"status": {"type": "string"}, "at": _TIME},
                },
            },
        },
    },
    "AlertPage": {
        "type": "object",
        "required": ["alerts", "next_cursor"],
        "properties": {
            "alerts": {"type": "array", "items": ref("Alert")},
            "next_cursor": _NSTR,
        },
    },
    "MonitorSpec": {"type": "object", "required": ["app", "schedule"], "properties": _SPEC_PROPS},
    "Monitor": {
        "type": "object",
        "properties": {
            **_SPEC_PROPS,
            "source": {"type": "string", "enum": ["config", "api", "sdk"]},
            "state": {
                "type": "string",
                "enum": ["ok", "waiting", "running", "late", "overdue", "failing", "unknown"],
            },
            "last_run": {"oneOf": [_RUN, {"type": "null"}]},
            "next_expected_at": _NTIME,
            "recent_runs": {"type": "array", "items": _RUN},
        },
    },
    "MonitorList": {
        "type": "object",
        "properties": {"monitors": {"type": "array", "items": ref("Monitor")}},
    },
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
    "Silence": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "matchers": _LABELS,
            "author": {"type": "string"},
            "reason": {"type": "string"},
            "starts_at": _TIME,
            "ends_at": _TIME,
            "active": {"type": "boolean"},
        },
    },
    "SilenceList": {
        "type": "object",
        "properties": {"silences": {"type": "array", "items": ref("Silence")}},
    },
}
