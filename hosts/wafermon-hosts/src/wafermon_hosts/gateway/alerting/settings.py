"""``gateway.alerting`` in the site config: monitors, rules, routing, grouping, delivery.

Structured like every host section (unknown keys are errors with a did-you-mean, each problem
names its key path and line); ``alerting_problems`` adds the checks across keys: a notifier or
rule type that does not exist, a cron expression or time zone that does not parse.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from wafermon import Problem, Seconds
from wafermon.config import LoadedConfig
from wafermon.errors import FieldValueError
from wafermon.interfaces import Notifier
from wafermon.plugins import Plugins

from ...common.settings import not_negative
from ...common.settings import positive as _positive

SEVERITIES = ("info", "warning", "critical")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def _name(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not _NAME.fullmatch(value):
        raise FieldValueError(
            attribute.name, f"must be 1-128 letters, digits, '_', '.', ':' or '-', got {value!r}"
        )


def _severity(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in SEVERITIES:
        raise FieldValueError(attribute.name, f"must be one of {', '.join(SEVERITIES)}")


def _at_least_one(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise FieldValueError(attribute.name, "must be 1 or more")


@attrs.frozen(kw_only=True)
class Schedule:
    """When a monitored job is expected to start: ``every`` (interval) or ``cron`` + zone."""

    every: Seconds | None = attrs.field(default=None)
    cron: str | None = None
    timezone: str = "UTC"

    def __attrs_post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise FieldValueError("every", "set exactly one of every or cron")
        if self.every is not None and self.every <= 0:
            raise FieldValueError("every", "must be more than 0")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise FieldValueError("timezone", f"unknown time zone {self.timezone!r}") from None
        if self.cron is not None:
            from .schedule import check_cron

            error = check_cron(self.cron)
            if error:
                raise FieldValueError("cron", error)

    def as_json(self) -> dict[str, Any]:
        if self.cron is not None:
            return {"cron": self.cron, "timezone": self.timezone}
        return {"every": _duration_text(self.every)}


@attrs.frozen(kw_only=True)
class MonitorSpec:
    """An expected job: which runs count (app, business-key pattern) and when they are due."""

    name: str = attrs.field(validator=_name)
    app: str
    schedule: Schedule
    site_id: str | None = None  # None: the gateway's own site
    business_key: str | None = None  # fnmatch pattern, e.g. "lot-*"
    grace: Seconds = attrs.field(default=Seconds(300.0), validator=not_negative)
    max_runtime: Seconds | None = None
    min_runtime: Seconds | None = None
    failures_to_alert: int = attrs.field(default=1, validator=_at_least_one)
    successes_to_resolve: int = attrs.field(default=1, validator=_at_least_one)
    severity: str = attrs.field(default="critical", validator=_severity)
    notifiers: list[str] | None = None  # None: alerting.notifiers

    def as_json(self, source: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "site_id": self.site_id,
            "app": self.app,
            "business_key": self.business_key,
            "schedule": self.schedule.as_json(),
            "grace": _duration_text(self.grace),
            "max_runtime": _duration_text(self.max_runtime),
            "min_runtime": _duration_text(self.min_runtime),
            "failures_to_alert": self.failures_to_alert,
            "successes_to_resolve": self.successes_to_resolve,
            "severity": self.severity,
            "notifiers": self.notifiers,
            "source": source,
        }


@attrs.frozen(kw_only=True)
class RuleSpec:
    """A rule over stored events; ``type`` picks the built-in (or a registered custom) rule.

    Thresholds only matter for the types that read them (see docs/alerting.md#rules).
    """

    name: str = attrs.field(validator=_name)
    type: str
    #: None: the custom rule's own severity, else warning
    severity: str | None = attrs.field(default=None, validator=attrs.validators.optional(_severity))
    site_id: str | None = None
    app: str | None = None
    business_key: str | None = None
    notifiers: list[str] | None = None
    message: str | None = None  # a str.format template over the rule's figures
    cooldown: Seconds | None = None  # repeat_interval for this rule's alerts
    # failure_rate: ``failures`` of the last ``of_last`` runs, and/or a rate over ``window``
    failures: int | None = None
    of_last: int | None = None
    window: Seconds | None = None
    rate: float | None = None
    min_runs: int = 1
    # long_running / peak_memory / duration_regression / subjob_failure_ratio / lag
    max_runtime: Seconds | None = None
    max_memory_mb: float | None = None
    factor: float = 2.0
    history: int = attrs.field(default=20, validator=_at_least_one)
    ratio: float | None = None
    max_lag: Seconds | None = None
    source: str | None = None  # source_unreachable: one source (None: the store and every one)
    config: dict[str, Any] = attrs.Factory(dict)  # free settings for custom rules


@attrs.frozen(kw_only=True)
class RetrySettings:
    attempts: int = attrs.field(default=5, validator=_at_least_one)
    initial: Seconds = attrs.field(default=Seconds(1.0), validator=_positive)
    max: Seconds = attrs.field(default=Seconds(60.0), validator=_positive)
    timeout: Seconds = attrs.field(default=Seconds(10.0), validator=_positive)


@attrs.frozen(kw_only=True)
class AlertingSettings:
    """Everything under ``gateway.alerting``."""

    enabled: bool = False
    interval: Seconds = attrs.field(default=Seconds(30.0), validator=_positive)
    #: A site whose newest event time is older than this (wall clock) is "not reporting".
    stall_after: Seconds | None = Seconds(900.0)
    #: How far back the engine reads runs (bounds each cycle's work).
    lookback: Seconds = attrs.field(default=Seconds(2 * 86400.0), validator=_positive)
    notifiers: list[str] = attrs.Factory(list)  # the default route
    group_by: list[str] = attrs.Factory(lambda: ["rule", "site_id"])
    group_wait: Seconds = attrs.field(default=Seconds(0.0), validator=not_negative)
    group_interval: Seconds = attrs.field(default=Seconds(60.0), validator=not_negative)
    repeat_interval: Seconds = attrs.field(default=Seconds(4 * 3600.0), validator=_positive)
    retry: RetrySettings = RetrySettings()
    lease: Seconds = attrs.field(default=Seconds(30.0), validator=_positive)
    url: str | None = None  # base of Alert.url: "{url}/{fingerprint}"
    monitors: list[MonitorSpec] = attrs.Factory(list)
    rules: list[RuleSpec] = attrs.Factory(list)


def alerting_problems(
    loaded: LoadedConfig, settings: AlertingSettings, plugins: Plugins, rule_types: set[str]
) -> list[Problem]:
    """Cross-key checks: names unique, notifiers and rule types exist."""
    problems: list[Problem] = []
    have = {e.name for _i, e in loaded.enabled("notifiers")}

    def notifiers(where: str, names: list[str] | None) -> None:
        for i, name in enumerate(names or ()):
            if name not in have:
                listed = ", ".join(sorted(have)) or "none"
                problems.append(
                    loaded.problem(
                        f"$.gateway.alerting.{where}[{i}]",
                        f"no enabled notifier named {name!r} (notifiers: {listed})",
                    )
                )

    notifiers("notifiers", settings.notifiers)
    seen: set[str] = set()
    for i, monitor in enumerate(settings.monitors):
        if monitor.name in seen:
            problems.append(loaded.problem(f"$.gateway.alerting.monitors[{i}].name", "used twice"))
        seen.add(monitor.name)
        notifiers(f"monitors[{i}].notifiers", monitor.notifiers)
    seen = set()
    for i, rule in enumerate(settings.rules):
        where = f"$.gateway.alerting.rules[{i}]"
        if rule.name in seen:
            problems.append(loaded.problem(f"{where}.name", "used twice"))
        seen.add(rule.name)
        if rule.type not in rule_types:
            problems.append(
                loaded.problem(
                    f"{where}.type",
                    f"unknown rule type {rule.type!r} (types: {', '.join(sorted(rule_types))})",
                )
            )
        notifiers(f"rules[{i}].notifiers", rule.notifiers)
    del plugins
    return problems


def build_notifiers(loaded: LoadedConfig, plugins: Plugins, problems: list[Problem]) -> dict:
    """Every enabled ``notifiers:`` entry, built (not started); faults go to ``problems``."""
    from wafermon import ConfigError

    built: dict[str, Notifier] = {}
    for index, entry in loaded.enabled("notifiers"):
        try:
            built[entry.name] = loaded.build_entry("notifiers", index, entry, plugins)
        except ConfigError as exc:
            problems.extend(attrs.evolve(p, path=f"$.{p.path}") for p in exc.problems)
    return built


def _duration_text(value: float | None) -> str | None:
    if value is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"
