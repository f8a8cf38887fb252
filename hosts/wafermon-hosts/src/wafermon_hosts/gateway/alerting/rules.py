"""Rules over stored runs: the built-in types and the ``AlertRule`` API for custom ones.

A rule is a function of a ``RuleContext`` (the stream time, the runs of the lookback window,
the site watermarks, the rule's own ``RuleSpec``) returning ``Finding``s: what is wrong right
now, each with labels that say *what* (they make the alert's fingerprint) and figures for the
message template. A finding present in one cycle and gone in the next resolves its alert, so
rules stay stateless; the engine keeps the lifecycle.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import attrs

from wafermon.store import EntityState

from .settings import SEVERITIES, RuleSpec


@attrs.frozen
class Finding:
    """One thing a rule found: ``labels`` identify it, ``figures`` fill the message."""

    labels: dict[str, str] = attrs.Factory(dict)
    figures: dict[str, Any] = attrs.Factory(dict)
    summary: str | None = None


@attrs.frozen
class RuleContext:
    """What a rule sees in one evaluation cycle."""

    now: datetime  # wall clock
    times: dict[str, datetime]  # site_id -> stream time (watermark-bounded)
    jobs: list[EntityState]
    subjobs: list[EntityState]
    watermarks: dict[str, datetime]
    spec: RuleSpec
    health: dict[str, tuple[bool, str]]  # "managed" and each source -> (ok, detail)

    def time_of(self, site_id: str) -> datetime:
        return self.times.get(site_id, self.now)

    def runs(self, entities: Iterable[EntityState] | None = None) -> list[EntityState]:
        """The runs this rule's site/app/business_key filters select."""
        spec = self.spec
        return [
            e
            for e in (self.jobs if entities is None else entities)
            if (spec.site_id is None or e.site_id == spec.site_id)
            and (spec.app is None or e.app == spec.app)
            and (
                spec.business_key is None
                or (e.business_key is not None and fnmatchcase(e.business_key, spec.business_key))
            )
        ]


def _severity(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in SEVERITIES:
        raise ValueError(f"{attribute.name} must be one of {', '.join(SEVERITIES)}")


@attrs.frozen
class AlertRule:
    """A custom rule, in the spirit of the seed's ``AlertRule``.

    ``condition(ctx)`` returns True/False (one alert without labels) or findings (a Finding,
    or a dict of labels, per thing that is wrong). ``message_template`` is ``str.format``-ed
    with the finding's labels and figures plus ``rule``; ``cooldown_minutes`` is how often a
    still-firing alert is sent again.
    """

    name: str
    condition: Callable[[RuleContext], Any]
    severity: str = attrs.field(default="warning", validator=_severity)
    message_template: str = "{rule} fired"
    cooldown_minutes: float = 60.0

    def __call__(self, ctx: RuleContext) -> list[Finding]:
        found = self.condition(ctx)
        if found is True:
            return [Finding()]
        if not found:
            return []
        if isinstance(found, Finding | dict):
            found = [found]
        return [f if isinstance(f, Finding) else Finding(labels=dict(f)) for f in found]


def _window(ctx: RuleContext, site: str, seconds: float) -> datetime:
    return ctx.time_of(site) - timedelta(seconds=seconds)


def _by_app(runs: list[EntityState]) -> dict[tuple[str, str], list[EntityState]]:
    groups: dict[tuple[str, str], list[EntityState]] = {}
    for run in runs:
        groups.setdefault((run.site_id, run.app), []).append(run)
    for group in groups.values():
        group.sort(key=lambda r: r.start_time)
    return groups


def _ended(run: EntityState, t: datetime) -> bool:
    return run.status != "running" and (run.finished_at is None or run.finished_at <= t)


def failure_rate(ctx: RuleContext) -> list[Finding]:
    """``failures`` of the last ``of_last`` finished runs failed, and/or the failed share of
    the runs that ended within ``window`` is at least ``rate`` (with ``min_runs`` runs)."""
    spec, found = ctx.spec, []
    for (site, app), runs in _by_app(ctx.runs()).items():
        t = ctx.time_of(site)
        ended = [r for r in runs if _ended(r, t)]
        figures: dict[str, Any] = {}
        if spec.failures is not None and spec.of_last is not None:
            last = ended[-spec.of_last :]
            failed = sum(r.status == "failed" for r in last)
            if failed >= spec.failures:
                figures = {"failed": failed, "total": len(last)}
        if not figures and spec.rate is not None:
            since = _window(ctx, site, spec.window or 3600)
            recent = [r for r in ended if (r.finished_at or r.updated_at) >= since]
            failed = sum(r.status == "failed" for r in recent)
            if len(recent) >= spec.min_runs and failed / len(recent) >= spec.rate:
                figures = {"failed": failed, "total": len(recent)}
        if figures:
            summary = f"{app}: {figures['failed']} of the last {figures['total']} runs failed"
            found.append(Finding({"site_id": site, "app": app}, figures, summary))
    return found


def long_running(ctx: RuleContext) -> list[Finding]:
    """Runs still running longer than ``max_runtime`` (stream time)."""
    limit = ctx.spec.max_runtime or 3600.0
    found = []
    for run in ctx.runs():
        age = (ctx.time_of(run.site_id) - run.start_time).total_seconds()
        if run.status == "running" and age > limit:
            found.append(_job_finding(run, {"running_s": round(age)}, f"running for {age:.0f}s"))
    return found


def peak_memory(ctx: RuleContext) -> list[Finding]:
    """Runs within ``window`` whose peak memory exceeded ``max_memory_mb``."""
    limit = ctx.spec.max_memory_mb
    found = []
    for run in ctx.runs():
        since = _window(ctx, run.site_id, ctx.spec.window or 3600)
        if limit is not None and (run.mem_max_mb or 0) > limit and run.updated_at >= since:
            found.append(
                _job_finding(run, {"mem_max_mb": run.mem_max_mb}, f"peak {run.mem_max_mb} MB")
            )
    return found


def duration_regression(ctx: RuleContext) -> list[Finding]:
    """The app's latest finished run took ``factor`` times the median of its previous
    ``history`` finished runs (at least 3 of them)."""
    spec, found = ctx.spec, []
    for (site, app), runs in _by_app(ctx.runs()).items():
        done = [(r, r.duration_s) for r in runs if r.status == "finished" and r.duration_s]
        if len(done) < 4:
            continue
        (latest, took), before = done[-1], done[-1 - spec.history : -1]
        median = statistics.median(d for _r, d in before)
        if median > 0 and took >= spec.factor * median:
            figures = {
                "duration_s": took,
                "median_s": median,
                "job_id": latest.entity_id,
            }
            summary = f"{app}: {took:g}s against a median of {median:g}s"
            found.append(Finding({"site_id": site, "app": app}, figures, summary))
    return found


def subjob_failure_ratio(ctx: RuleContext) -> list[Finding]:
    """Jobs (within ``window``) whose failed subjobs are at least ``ratio`` of all."""
    ratio = ctx.spec.ratio if ctx.spec.ratio is not None else 0.1
    by_parent: dict[str, list[EntityState]] = {}
    for sub in ctx.subjobs:
        if sub.parent_id is not None:
            by_parent.setdefault(sub.parent_id, []).append(sub)
    found = []
    for run in ctx.runs():
        subs = by_parent.get(run.entity_id)
        since = _window(ctx, run.site_id, ctx.spec.window or 3600)
        if not subs or run.updated_at < since:
            continue
        failed = sum(s.status == "failed" for s in subs)
        if failed / len(subs) >= ratio:
            summary = f"{failed} of {len(subs)} subjobs failed"
            found.append(_job_finding(run, {"failed": failed, "total": len(subs)}, summary))
    return found


def ingestion_lag(ctx: RuleContext) -> list[Finding]:
    """A site's newest event is older than ``max_lag`` (wall clock): spool or ingestion lag."""
    limit = ctx.spec.max_lag or 600.0
    found = []
    for site, mark in ctx.watermarks.items():
        lag = (ctx.now - mark).total_seconds()
        if (ctx.spec.site_id is None or site == ctx.spec.site_id) and lag > limit:
            found.append(Finding({"site_id": site}, {"lag_s": round(lag)}, f"lag {lag:.0f}s"))
    return found


def unreachable(ctx: RuleContext) -> list[Finding]:
    """The managed store or a source fails its health check (``source`` picks one)."""
    return [
        Finding({"source": name}, {"detail": detail}, f"{name} unreachable: {detail}")
        for name, (ok, detail) in ctx.health.items()
        if not ok and (ctx.spec.source is None or name == ctx.spec.source)
    ]


def _job_finding(run: EntityState, figures: dict[str, Any], summary: str) -> Finding:
    labels = {"site_id": run.site_id, "app": run.app, "job_id": run.entity_id}
    if run.business_key:
        labels["business_key"] = run.business_key
    return Finding(labels, figures, f"{run.app} {run.entity_id}: {summary}")


BUILTIN: dict[str, Callable[[RuleContext], list[Finding]]] = {
    "failure_rate": failure_rate,
    "long_running": long_running,
    "peak_memory": peak_memory,
    "duration_regression": duration_regression,
    "subjob_failure_ratio": subjob_failure_ratio,
    "ingestion_lag": ingestion_lag,
    "store_unreachable": unreachable,
    "source_unreachable": unreachable,
}


def rule_types(plugins: Any) -> dict[str, Callable[[RuleContext], list[Finding]]]:
    """Built-in rule types plus every ``AlertRule`` a plugin registers."""
    types: dict[str, Callable[[RuleContext], list[Finding]]] = dict(BUILTIN)

    def register(rule: AlertRule) -> None:
        if not isinstance(rule, AlertRule):
            raise TypeError(f"register_alert_rules: expected an AlertRule, got {rule!r}")
        types[rule.name] = rule

    hook = getattr(plugins.pm.hook, "register_alert_rules", None)
    if hook is not None:
        hook(register=register)
    return types
