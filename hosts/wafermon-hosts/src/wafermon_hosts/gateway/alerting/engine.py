"""The alert engine: evaluate monitors and rules in stream time, keep each alert's lifecycle
in the managed store, group and deliver notifications with retries.

Stream time: each site's clock is its *watermark*, the newest event time ingested from it
(never ahead of the wall clock). Monitors and rules judge a site at its own clock, so a site
whose events stop arriving (a gateway down, a spool backlog) cannot produce "missed" alerts
for jobs that may well have run; once its watermark is older than ``stall_after`` (wall
clock) its monitors are ``unknown`` and ONE ``site_not_reporting`` alert fires, which inhibits
that site's other alerts (kept, shown as inhibited, not sent).

Only the holder of the store's lease evaluates and notifies; every gateway raises the
watermarks it saw and serves the API from the store. A transition is a row keyed by
``(fingerprint, seq)`` and a notification is claimed by compare-and-set on the alert's
``last_notified_at``, so two gateways on one store never notify twice for one transition.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import attrs
from prometheus_client import Counter, Gauge, Histogram
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_not_exception_type,
    stop_after_attempt,
)

from wafermon import Event, Kind, PermanentError, describe
from wafermon.errors import retry_delay
from wafermon.interfaces import Alert, Notifier
from wafermon.store import EntityQuery, EntityState
from wafermon.wire import WireEvent

from ...common.logs import get_logger
from . import monitors as monitor_eval
from .rules import Finding, RuleContext
from .settings import AlertingSettings, MonitorSpec, RuleSpec

log = get_logger("wafermon_hosts.gateway.alerting")

LEASE = "alert-engine"
SITE_RULE = "site_not_reporting"
MONITOR_RULES = {
    "missed": "monitor_missed",
    "overdue": "monitor_overdue",
    "failing": "monitor_failing",
}
PAGE = 1000
#: Failed cycles in a row after which the store counts as unreachable.
STORE_DOWN_CYCLES = 3
#: Seconds close() waits for the cycle in progress before cancelling it.
CLOSE_WAIT_S = 10.0


_OUTCOMES = frozenset((Kind.STARTED, Kind.FINISHED, Kind.FAILED))


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests set and move (``gateway.alerting`` engines take any ``now()``)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """Stable id of (rule, labels): the dedupe key of an alert."""
    text = rule + "\0" + "\0".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@attrs.frozen
class Candidate:
    """A finding turned into what an alert needs."""

    fingerprint: str
    rule: str
    severity: str
    summary: str
    description: str
    site_id: str | None
    labels: dict[str, str]
    notifiers: list[str]
    repeat_s: float


class AlertMetrics:
    def __init__(self, registry: Any) -> None:
        self.notifications = Counter(
            "wafermon_gateway_alert_notifications",
            "Notification deliveries by notifier and outcome (ok, failed: gave up or permanent).",
            ["notifier", "outcome"],
            registry=registry,
        )
        self.attempts_failed = Counter(
            "wafermon_gateway_alert_notification_failed_attempts",
            "Notification attempts that raised (each retry counts), by notifier.",
            ["notifier"],
            registry=registry,
        )
        self.firing = Gauge(
            "wafermon_gateway_alerts_firing",
            "Alerts firing after the last cycle.",
            registry=registry,
        )
        self.cycles = Counter(
            "wafermon_gateway_alert_cycles",
            "Evaluation cycles by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.cycle_seconds = Histogram(
            "wafermon_gateway_alert_cycle_seconds",
            "Seconds one evaluation cycle took.",
            registry=registry,
        )
        self.leader = Gauge(
            "wafermon_gateway_alert_leader",
            "1 if this gateway holds the alert engine's lease.",
            registry=registry,
        )


class Engine:
    """One gateway's alert engine (see the module docstring)."""

    def __init__(
        self,
        *,
        site_id: str,
        settings: AlertingSettings,
        state: Any,
        store: Any,
        notifiers: dict[str, Notifier],
        rule_types: dict[str, Any],
        registry: Any,
        clock: Any = None,
        health: Any = None,
    ) -> None:
        self.site_id = site_id
        self.settings = settings
        self.state = state
        self.store = store
        self.notifiers = notifiers
        self.rule_types = rule_types
        self.clock = clock or SystemClock()
        self.health = health  # async () -> {"managed": (ok, detail), source: ...}
        self.metrics = AlertMetrics(registry)
        self.holder = uuid.uuid4().hex
        self.leader = False
        self.origin: datetime | None = None
        self._seen: dict[str, datetime] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[bool]] = set()
        self._groups: dict[tuple, dict[str, Any]] = {}
        self.monitor_results: list[monitor_eval.MonitorResult] = []
        self._views_at = 0.0
        self._stalled: set[str] = set()
        self._views_stale = False  # a monitor changed through this gateway's API
        self._failed_cycles = 0
        self._store_alert: Alert | None = None
        self.run_loop = True  # tests drive cycle() themselves with a ManualClock
        self._stopping = False
        self.needs_subjobs = any(r.type == "subjob_failure_ratio" for r in settings.rules)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, loop: bool = True) -> None:
        await self.state.start()
        self.origin = self.clock.now()
        for name, notifier in self.notifiers.items():
            try:
                await notifier.start()
            except Exception as exc:  # noqa: BLE001 - delivery retries; logged here
                log.warning("notifier failed to start", notifier=name, error=describe(exc))
        if loop and self.run_loop:
            self._task = asyncio.create_task(self._loop(), name="alert-engine")

    async def close(self) -> None:
        """Stop after the cycle in progress (a cycle cancelled in the middle of a database
        call would leave the driver's thread answering a closed loop), then the deliveries."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_WAIT_S)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self.leader:
            with contextlib.suppress(Exception):
                await self.state.release_lease(LEASE, self.holder)
        for notifier in self.notifiers.values():
            with contextlib.suppress(Exception):
                await notifier.close()

    async def settle(self) -> None:
        """Wait for the deliveries in flight (tests, and a graceful stop)."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    def wake(self) -> None:
        """Evaluate now (a monitor or silence changed through the API)."""
        self._views_stale = True
        self._wake.set()

    def observe(self, events: Iterable[Event | WireEvent]) -> None:
        """Called on ingest with the accepted events (as objects, or as the fast decoder's
        wire events, whose time is text): raise watermarks, wake on outcomes."""
        now = self.clock.now()
        urgent = False
        for event in events:
            raw = event.time
            when = min(datetime.fromisoformat(raw) if isinstance(raw, str) else raw, now)
            mark = self._seen.get(event.site_id)
            if mark is None or when > mark:
                self._seen[event.site_id] = when
            urgent = urgent or event.kind in _OUTCOMES
        if urgent:
            self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            await self.run_cycle()
            if self._stopping:
                return
            wait: float = self.settings.interval
            due = self._next_flush()
            if due is not None:
                wait = max(0.05, min(wait, (due - self.clock.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            if not self._stopping:
                await asyncio.sleep(0.05)  # let a burst of ingests land in one cycle

    async def run_cycle(self) -> bool:
        """One cycle as the loop runs it: failures are logged, counted and, when the store
        stays down, alerted (see ``_store_down``); True if it succeeded."""
        started = time.monotonic()
        try:
            await self.cycle()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next cycle tries again
            self.metrics.cycles.labels("failed").inc()
            log.warning("alert cycle failed", error=describe(exc))
            await self._store_down(describe(exc))
            return False
        finally:
            self.metrics.cycle_seconds.observe(time.monotonic() - started)
        self.metrics.cycles.labels("ok").inc()
        await self._store_back()
        return True

    # -- the store itself down ---------------------------------------------------------------

    async def _store_down(self, reason: str) -> None:
        """After STORE_DOWN_CYCLES failed cycles in a row, send ONE ``store_unreachable``
        alert straight to the default route. It cannot be kept in the store that is down:
        it is not in the history, and each gateway of a shared store sends its own."""
        self._failed_cycles += 1
        if self._failed_cycles != STORE_DOWN_CYCLES:
            return
        labels = {"site_id": self.site_id, "source": "managed"}
        now = self.clock.now()
        self._store_alert = Alert(
            rule="store_unreachable",
            severity="critical",
            summary=f"the managed store is unreachable: {reason}",
            site_id=self.site_id,
            time=now,
            fingerprint=fingerprint("store_unreachable", labels),
            labels=labels,
            starts_at=now,
        )
        for name in self.settings.notifiers:
            self._deliver(name, self._store_alert)

    async def _store_back(self) -> None:
        self._failed_cycles = 0
        if self._store_alert is not None:
            now = self.clock.now()
            resolved = attrs.evolve(self._store_alert, status="resolved", ends_at=now, time=now)
            self._store_alert = None
            for name in self.settings.notifiers:
                self._deliver(name, resolved)

    # -- one cycle --------------------------------------------------------------------------

    async def cycle(self) -> None:
        """Raise watermarks; if this gateway holds the lease, evaluate, transition, notify."""
        now = self.clock.now()
        if self.origin is None:
            self.origin = now
        seen, self._seen = self._seen, {}
        try:
            marks = await self.state.merge_watermarks(seen.items())
        except Exception:
            for site, mark in seen.items():  # keep them for the next cycle
                self._seen[site] = max(mark, self._seen.get(site, mark))
            raise
        if self.site_id not in marks:  # first boot: the clock starts now
            marks = await self.state.merge_watermarks([(self.site_id, now)])
        until = now + timedelta(seconds=self.settings.lease)
        self.leader = await self.state.acquire_lease(LEASE, self.holder, now, until)
        self.metrics.leader.set(1 if self.leader else 0)
        if not self.leader:
            return
        candidates, results, stalled = await self.evaluate(now, marks)
        self.monitor_results, self._views_at = results, time.monotonic()
        await self._transition(now, candidates, stalled)
        await self._flush(now)

    async def evaluate(
        self, now: datetime, marks: dict[str, datetime]
    ) -> tuple[dict[str, Candidate], list[monitor_eval.MonitorResult], set[str]]:
        """Every rule and monitor at each site's stream time: the alerts that should fire."""
        stall = self.settings.stall_after
        stalled = {
            s for s, m in marks.items() if stall is not None and (now - m).total_seconds() > stall
        }
        times = {s: now if stall is None else min(now, m) for s, m in marks.items()}
        self._stalled = stalled
        since = min([*times.values(), now]) - timedelta(seconds=self.settings.lookback)
        jobs = await self._entities("job", since)
        subjobs = await self._entities("subjob", since) if self.needs_subjobs else []
        active = await self.state.active_alerts()
        candidates: dict[str, Candidate] = {}

        for site in sorted(stalled):
            mark = marks[site]
            self._add(
                candidates,
                SITE_RULE,
                "critical",
                Finding(
                    {"site_id": site},
                    {
                        "watermark": mark.isoformat(),
                        "silent_s": round((now - mark).total_seconds()),
                    },
                    f"site {site} is not reporting: newest event at {mark.isoformat()}",
                ),
                None,
            )

        results = await self._monitors(jobs, times, stalled, active, candidates)
        health = await self.health() if self.health is not None else {}
        for spec in self.settings.rules:
            rule = self.rule_types[spec.type]
            ctx = RuleContext(now, times, jobs, subjobs, marks, spec, health)
            try:
                findings = rule(ctx)
            except Exception as exc:  # noqa: BLE001 - one bad custom rule must not stop others
                log.warning("alert rule raised", rule=spec.name, error=describe(exc))
                continue
            severity = spec.severity or getattr(rule, "severity", None) or "warning"
            for finding in findings:
                self._add(candidates, spec.name, severity, finding, spec, rule)
        return candidates, results, stalled

    async def _entities(self, kind: str, since: datetime) -> list[EntityState]:
        """Jobs or subjobs started since ``since``: through the alert state's narrow query
        when it has one (the SQL store), else page by page through the store's API."""
        narrow = getattr(self.state, "runs", None)
        if narrow is not None:
            return await narrow(kind, since)
        found: list[EntityState] = []
        cursor = None
        while True:
            page = await self.store.entities(
                EntityQuery(
                    entity_type=kind, start=since, sort="start_time", limit=PAGE, cursor=cursor
                )
            )
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return found

    async def all_monitors(self) -> list[tuple[MonitorSpec, str]]:
        """Config monitors, then API/SDK ones from the store (a stored one does not replace a
        config one of the same name)."""
        from .api import spec_from_json

        specs = [(m, "config") for m in self.settings.monitors]
        names = {m.name for m in self.settings.monitors}
        for data, source in await self.state.monitors():
            if data.get("name") not in names:
                with contextlib.suppress(Exception):
                    specs.append((spec_from_json(data), source))
        return specs

    async def _monitors(
        self,
        jobs: list[EntityState],
        times: dict[str, datetime],
        stalled: set[str],
        active: dict[str, Any],
        candidates: dict[str, Candidate],
    ) -> list[monitor_eval.MonitorResult]:
        by_app: dict[str, list[EntityState]] = {}
        for job in jobs:
            by_app.setdefault(job.app, []).append(job)
        for runs in by_app.values():
            runs.sort(key=lambda r: r.start_time)
        results = []
        for spec, source in await self.all_monitors():
            site = spec.site_id or self.site_id
            runs = [r for r in by_app.get(spec.app, ()) if monitor_eval.matches(spec, r, site)]
            labels = {"site_id": site, "monitor": spec.name, "app": spec.app}
            failing_fp = fingerprint(MONITOR_RULES["failing"], labels)
            result = monitor_eval.evaluate(
                spec,
                source,
                site,
                runs,
                times.get(site, self.clock.now()),
                self.origin or self.clock.now(),
                stalled=site in stalled,
                failing_active=failing_fp in active,
            )
            results.append(result)
            for kind, finding in result.findings:
                self._add(candidates, MONITOR_RULES[kind], spec.severity, finding, spec)
        return results

    def _add(
        self,
        candidates: dict[str, Candidate],
        rule: str,
        severity: str,
        finding: Finding,
        spec: Any,
        custom: Any = None,
    ) -> None:
        labels = {k: str(v) for k, v in finding.labels.items()}
        fp = fingerprint(rule, labels)
        values = {**labels, **finding.figures, "rule": rule}
        summary = finding.summary or f"{rule}: " + ", ".join(f"{k}={v}" for k, v in labels.items())
        template = getattr(spec, "message", None) or getattr(custom, "message_template", None)
        description = summary
        if template:
            try:
                description = template.format_map(_Missing(values))
            except (ValueError, AttributeError, IndexError) as exc:
                description = f"{summary} (message template failed: {exc})"
        repeat = self.settings.repeat_interval
        if getattr(spec, "cooldown", None):
            repeat = spec.cooldown
        elif getattr(custom, "cooldown_minutes", None):
            repeat = custom.cooldown_minutes * 60
        routes = getattr(spec, "notifiers", None)
        candidates[fp] = Candidate(
            fp,
            rule,
            severity,
            summary,
            description,
            labels.get("site_id", self.site_id),
            labels,
            list(self.settings.notifiers if routes is None else routes),
            repeat,
        )

    # -- lifecycle: transitions -------------------------------------------------------------

    async def _transition(
        self, now: datetime, candidates: dict[str, Candidate], stalled: set[str]
    ) -> None:
        active = await self.state.active_alerts()
        silences = [s for s in await self.state.silences() if s["starts_at"] <= now < s["ends_at"]]
        for fp, c in candidates.items():
            silenced = _silenced_by(silences, c)
            inhibited = c.rule != SITE_RULE and c.site_id in stalled
            current = active.get(fp)
            if current is None:
                previous = await self.state.get_alert(fp)
                alert = {
                    "fingerprint": fp,
                    "rule": c.rule,
                    "severity": c.severity,
                    "status": "firing",
                    "summary": c.summary,
                    "description": c.description,
                    "site_id": c.site_id,
                    "labels": c.labels,
                    "starts_at": now,
                    "ends_at": None,
                    "last_notified_at": None,
                    "silenced_by": silenced,
                    "inhibited": inhibited,
                    "seq": (previous["seq"] if previous else 0) + 1,
                    "notified_seq": 0,
                }
                if await self.state.transition(alert, now):
                    log.info("alert firing", rule=c.rule, fingerprint=fp, labels=c.labels)
                    if silenced is None and not inhibited:
                        self._queue(now, alert, c)
                continue
            if (current["silenced_by"], current["inhibited"]) != (silenced, inhibited):
                await self.state.update_flags(fp, silenced, inhibited)
            if silenced is not None or inhibited:
                continue
            last = current["last_notified_at"]
            if last is None or current["notified_seq"] != current["seq"]:
                self._queue(now, current, c)  # never sent (was silenced or inhibited)
            elif (now - last).total_seconds() >= c.repeat_s:
                self._queue(now, current, c)
        for fp, current in active.items():
            if fp in candidates:
                continue
            alert = dict(current, status="resolved", ends_at=now, seq=current["seq"] + 1)
            if await self.state.transition(alert, now):
                log.info("alert resolved", rule=current["rule"], fingerprint=fp)
                if current["notified_seq"] and current["silenced_by"] is None:
                    c = self._route_of(current)
                    self._queue(now, alert, c)
        self.metrics.firing.set(sum(1 for fp in candidates))

    def _route_of(self, alert: dict[str, Any]) -> Candidate:
        spec: RuleSpec | MonitorSpec | None
        spec = next((r for r in self.settings.rules if r.name == alert["rule"]), None)
        if spec is None and "monitor" in alert["labels"]:
            spec = next(
                (m for m in self.settings.monitors if m.name == alert["labels"]["monitor"]), None
            )
        routes = getattr(spec, "notifiers", None)
        return Candidate(
            alert["fingerprint"],
            alert["rule"],
            alert["severity"],
            alert["summary"],
            alert["description"],
            alert["site_id"],
            alert["labels"],
            list(self.settings.notifiers if routes is None else routes),
            0.0,
        )

    # -- grouping and delivery --------------------------------------------------------------

    def _group_key(self, c: Candidate) -> tuple:
        return tuple(c.rule if k == "rule" else c.labels.get(k, "") for k in self.settings.group_by)

    def _queue(self, now: datetime, alert: dict[str, Any], c: Candidate) -> None:
        group = self._groups.setdefault(
            self._group_key(c), {"pending": {}, "first_at": None, "flushed_at": None}
        )
        if not group["pending"]:
            group["first_at"] = now
        group["pending"][alert["fingerprint"]] = (dict(alert), c)

    def _due(self, group: dict[str, Any]) -> datetime | None:
        if not group["pending"]:
            return None
        if group["flushed_at"] is None:
            return group["first_at"] + timedelta(seconds=self.settings.group_wait)
        return max(
            group["first_at"], group["flushed_at"] + timedelta(seconds=self.settings.group_interval)
        )

    def _next_flush(self) -> datetime | None:
        dues = [d for g in self._groups.values() if (d := self._due(g)) is not None]
        return min(dues, default=None)

    async def _flush(self, now: datetime) -> None:
        for group in self._groups.values():
            due = self._due(group)
            if due is None or due > now:
                continue
            pending, group["pending"] = group["pending"], {}
            sent_firing = False
            for alert, c in pending.values():
                if await self.state.claim_notification(
                    alert["fingerprint"], alert["seq"], alert["last_notified_at"], now
                ):
                    sent_firing = sent_firing or alert["status"] == "firing"
                    for name in c.notifiers:
                        self._deliver(name, self._alert(alert, now))
            # A group that sent nothing firing (a flap resolved within group_wait, or only
            # resolutions) starts over: its next alert waits group_wait, as a new group would.
            group["flushed_at"] = now if sent_firing else None

    def _alert(self, row: dict[str, Any], now: datetime) -> Alert:
        base = self.settings.url
        return Alert(
            rule=row["rule"],
            severity=row["severity"],
            summary=row["summary"],
            site_id=row["site_id"],
            time=now,
            fingerprint=row["fingerprint"],
            status=row["status"],
            labels=dict(row["labels"]),
            description=row["description"],
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            url=f"{base.rstrip('/')}/{row['fingerprint']}" if base else None,
            details={"seq": row["seq"]},
        )

    def _deliver(self, name: str, alert: Alert) -> None:
        task = asyncio.create_task(self.deliver(name, alert), name=f"notify-{name}")
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def deliver(self, name: str, alert: Alert) -> bool:
        """Send ``alert`` through notifier ``name`` with retries and backoff (tenacity: full
        jitter, the core router's schedule); every attempt is recorded on the alert."""
        notifier = self.notifiers.get(name)
        retry = self.settings.retry
        seq = alert.details.get("seq", 0)
        attempt_no = 0
        error: str | None = None
        if notifier is None:
            error = f"no enabled notifier named {name!r}"
            await self._record(alert, seq, name, 1, False, error)
            self.metrics.notifications.labels(name, "failed").inc()
            return False
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(retry.attempts),
                wait=_backoff(retry.initial, retry.max),
                retry=retry_if_not_exception_type(PermanentError),
                reraise=True,
            ):
                with attempt:
                    attempt_no = attempt.retry_state.attempt_number
                    try:
                        async with asyncio.timeout(retry.timeout):
                            await notifier.notify(alert)
                    except Exception as exc:
                        self.metrics.attempts_failed.labels(name).inc()
                        await self._record(alert, seq, name, attempt_no, False, describe(exc))
                        raise
            await self._record(alert, seq, name, attempt_no, True, None)
            self.metrics.notifications.labels(name, "ok").inc()
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - gave up: visible on the alert and /metrics
            self.metrics.notifications.labels(name, "failed").inc()
            log.warning(
                "notification failed",
                notifier=name,
                fingerprint=alert.fingerprint,
                attempts=attempt_no,
                error=describe(exc),
            )
            return False

    async def _record(
        self, alert: Alert, seq: int, name: str, attempt: int, ok: bool, error: str | None
    ) -> None:
        try:
            await self.state.record_attempt(
                alert.fingerprint, seq, name, self.clock.now(), attempt, ok, error
            )
        except Exception as exc:  # noqa: BLE001 - the store may be what is down
            log.warning("could not record a notification attempt", error=describe(exc))

    # -- views for the API ------------------------------------------------------------------

    async def monitor_views(self) -> list[monitor_eval.MonitorResult]:
        """The last cycle's monitor states; a gateway that is not the leader computes them
        (at most once per interval)."""
        fresh = time.monotonic() - self._views_at < self.settings.interval
        cached = (self.leader and self.monitor_results) or fresh
        if self._views_stale or not cached:
            self._views_stale = False
            now = self.clock.now()
            marks = await self.state.merge_watermarks([])
            _c, self.monitor_results, _s = await self.evaluate(now, marks)
            self._views_at = time.monotonic()
        return self.monitor_results


def _backoff(base_s: float, max_s: float) -> Any:
    """tenacity's wait: the core's ``retry_delay`` (the router's and the SDK's exponential
    backoff with full jitter), never shorter than a ``retry_after`` the receiver asked for."""

    def wait(state: RetryCallState) -> float:
        failed = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(failed, "retry_after", None)
        return retry_delay(state.attempt_number, base_s=base_s, max_s=max_s, retry_after=asked)

    return wait


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _silenced_by(silences: list[dict[str, Any]], c: Candidate) -> str | None:
    labels = {**c.labels, "rule": c.rule, "severity": c.severity}
    for silence in silences:
        if all(
            key in labels and fnmatchcase(labels[key], str(pattern))
            for key, pattern in silence["matchers"].items()
        ):
            return silence["id"]
    return None
