"""``wafermon alerts``: commands about alerting that run without a gateway.

``wafermon alerts test-notification -c site.yaml --notifier NAME`` builds one notifier from the
site config's ``notifiers:`` list exactly as the gateway's alert engine does, sends it one test
alert and says what happened: delivered (exit 0), or failed with the reason and whether the
engine would retry it (exit 1). It is how an operator checks a webhook URL, a chat hook or
SMTP settings before a real alert depends on them. Nothing is stored; secrets are never shown.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import click

from .common.cli import fail

TEST_RULE = "test-notification"


@click.group("alerts")
def alerts() -> None:
    """Alerting from the command line (the engine itself runs in the gateway)."""


@alerts.command("test-notification")
@click.option("-c", "--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--notifier", "name", required=True, help="Name of an entry under notifiers:.")
@click.option(
    "--severity",
    type=click.Choice(["info", "warning", "critical"]),
    default="info",
    show_default=True,
)
@click.option(
    "--status",
    type=click.Choice(["firing", "resolved"]),
    default="firing",
    show_default=True,
    help="Send the test alert as firing or as resolved.",
)
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait.")
def test_notification(
    config_file: str, name: str, severity: str, status: str, timeout: float
) -> None:
    """Send a test alert through the notifier NAME of the site config and print the outcome."""
    from wafermon import ConfigError, PluginError
    from wafermon.config import load_config
    from wafermon.plugins import Plugins

    try:
        loaded = load_config(config_file)
    except ConfigError as exc:
        fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])
    index, entry = loaded.find("notifiers", name)
    if entry is None:
        have = ", ".join(n.name for n in loaded.site.notifiers) or "none"
        fail(f"{config_file}: no notifier named {name!r} under notifiers: (have: {have})")
    try:
        notifier = loaded.build_entry("notifiers", index, entry, Plugins.discover())
    except ConfigError as exc:
        fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])
    except PluginError as exc:
        fail(str(exc))
    alert = test_alert(loaded.site.site_id, name, severity, status)
    label = f"notifier {name!r} (type {entry.type})"
    if not entry.enabled:
        click.echo(f"note: {label} is disabled in {config_file}; testing it anyway", err=True)
    outcome = asyncio.run(_send(notifier, alert, timeout))
    if outcome is not None:
        fail(f"{label}: test notification failed: {outcome}")
    click.echo(f"{label}: test notification delivered ({status}, {severity})")


def test_alert(site_id: str, notifier: str, severity: str, status: str) -> Any:
    """An alert that says plainly it is a test, with a unique fingerprint."""
    from wafermon import Alert

    now = datetime.now(UTC)
    return Alert(
        rule=TEST_RULE,
        severity=severity,
        status=status,
        summary=f"Test notification from wafermon site {site_id}",
        description=(
            f"Sent by `wafermon alerts test-notification` to check notifier {notifier!r}. "
            "No action is needed."
        ),
        site_id=site_id,
        fingerprint=f"{TEST_RULE}-{uuid.uuid4().hex}",
        labels={"site_id": site_id, "app": "wafermon", "monitor": TEST_RULE},
        starts_at=now,
        ends_at=now if status == "resolved" else None,
        time=now,
    )


async def _send(notifier: Any, alert: Any, timeout: float) -> str | None:
    """None when delivered, else the reason, saying whether the engine would retry."""
    from wafermon import EmitterError, describe

    try:
        await asyncio.wait_for(_start_and_notify(notifier, alert), timeout)
    except EmitterError as exc:
        if not exc.retryable:
            return f"{exc} (permanent: the alert engine would not retry)"
        wait = getattr(exc, "retry_after", None)
        asked = f", the receiver asked to wait {wait:.0f}s" if wait is not None else ""
        return f"{exc} (retryable: the alert engine would try again{asked})"
    except TimeoutError:
        return f"no outcome within {timeout:g}s (retryable: the alert engine would try again)"
    except Exception as exc:  # noqa: BLE001 - a notifier's own bug, reported not raised
        return f"the notifier failed unexpectedly: {describe(exc)}"
    finally:
        await notifier.close()
    return None


async def _start_and_notify(notifier: Any, alert: Any) -> None:
    await notifier.start()
    await notifier.notify(alert)
