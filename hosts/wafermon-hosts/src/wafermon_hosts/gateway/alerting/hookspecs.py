"""Hooks of the gateway's alert engine, added to the plugin manager when the gateway loads.

They live with the gateway rather than in the core's hookspecs because only the gateway
calls them; a plugin implements them with the core's ``wafermon.hookimpl`` marker as usual
(``optionalhook=True`` lets the plugin load where no gateway is installed).
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("wafermon")


@hookspec
def register_alert_rules(register: Any) -> None:
    """Register custom rule types: ``register(AlertRule(...))``; a config rule names it by
    ``type: <AlertRule.name>``."""


@hookspec(firstresult=True)
def alert_state(store: Any) -> Any:
    """Where the alert engine keeps its state for this managed store (an object with the
    methods of ``wafermon_backend_sql.alerts.SqlAlertState``), or None if it cannot."""


def add_to(pm: pluggy.PluginManager) -> None:
    """Add these specs once (a test process may load several gateways)."""
    import sys

    if not hasattr(pm.hook, "register_alert_rules") or not pm.hook.register_alert_rules.spec:
        pm.add_hookspecs(sys.modules[__name__])
