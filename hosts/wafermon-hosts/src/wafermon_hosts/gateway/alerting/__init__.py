"""The gateway's alert engine (issue 19): monitors, rules, lifecycle, routing, delivery.

``build_engine`` wires it from ``gateway.alerting`` (see docs/alerting.md); the API is in
``api``, custom rules come from the ``register_alert_rules`` hook (``AlertRule``), and the
engine's state lives in the managed store (the ``alert_state`` hook; the SQL store has it).
"""

from __future__ import annotations

from typing import Any

from wafermon import ConfigError, Problem

from .engine import Engine, ManualClock, SystemClock, fingerprint
from .rules import AlertRule, Finding, RuleContext, rule_types

__all__ = [
    "AlertRule",
    "Engine",
    "Finding",
    "ManualClock",
    "RuleContext",
    "SystemClock",
    "build_engine",
    "fingerprint",
]


def build_engine(gw: Any, notifiers: dict[str, Any], clock: Any = None) -> Engine | None:
    """The engine for ``gw`` when ``gateway.alerting.enabled``, else None.

    Raises ConfigError when the managed store cannot keep alert state.
    """
    settings = gw.settings.alerting
    if not settings.enabled:
        return None
    state = gw.plugins.pm.hook.alert_state(store=gw.store)
    if state is None:
        raise ConfigError(
            [
                Problem(
                    "gateway.alerting.enabled",
                    f"the managed store {gw.store.name!r} (type {gw.store_type}) cannot keep "
                    "alert state; use type sql (SQLite or PostgreSQL)",
                )
            ]
        )

    async def health() -> dict[str, tuple[bool, str]]:
        found = {"managed": await gw.store_health()}
        for name, source in gw.sources.items():
            found[name] = await source.health()
        return {name: (h.ok, h.detail) for name, h in found.items()}

    return Engine(
        site_id=gw.site_id,
        settings=settings,
        state=state,
        store=gw.store,
        notifiers=notifiers,
        rule_types=rule_types(gw.plugins),
        registry=gw.metrics.registry,
        clock=clock,
        health=health,
    )
