"""Declare the job's monitor (an expected job) on the site gateway, from the job itself.

    from wafermon_sdk import upsert_monitor
    upsert_monitor("https://gw.fab1:18000", "nightly-etl", app="etl",
                   cron="0 2 * * *", timezone="Europe/Berlin", grace="15m", max_runtime="2h",
                   token=os.environ["WAFERMON_ADMIN_TOKEN"])

This is a call to the gateway's ``PUT /v1/monitors/{name}?source=sdk`` (admin scope), not an
event: the wire format stays as it is. Call it at the job's start (it is idempotent: the same
arguments replace the monitor with itself); the gateway's alert engine then expects the next
run on that schedule (docs/alerting.md).
"""

from __future__ import annotations

from typing import Any

import httpx


class MonitorError(RuntimeError):
    """The gateway refused the monitor; ``problems`` lists the faulty fields it named."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def upsert_monitor(
    gateway_url: str,
    name: str,
    *,
    app: str,
    every: str | float | None = None,
    cron: str | None = None,
    timezone: str = "UTC",
    business_key: str | None = None,
    grace: str | float | None = None,
    max_runtime: str | float | None = None,
    min_runtime: str | float | None = None,
    failures_to_alert: int | None = None,
    successes_to_resolve: int | None = None,
    severity: str | None = None,
    notifiers: list[str] | None = None,
    token: str | None = None,
    timeout: float = 5.0,
    verify: bool | str = True,
) -> dict[str, Any]:
    """Create or replace monitor ``name``; returns the monitor as the gateway stored it.

    Set exactly one of ``every`` (``"1h"``) or ``cron`` (with ``timezone``). Raises
    MonitorError with the gateway's reason (a 400 names the field), httpx errors when the
    gateway cannot be reached.
    """
    schedule: dict[str, Any] = {"every": every} if cron is None else {"cron": cron}
    if cron is not None:
        schedule["timezone"] = timezone
    optional = {
        "business_key": business_key,
        "grace": grace,
        "max_runtime": max_runtime,
        "min_runtime": min_runtime,
        "failures_to_alert": failures_to_alert,
        "successes_to_resolve": successes_to_resolve,
        "severity": severity,
        "notifiers": notifiers,
    }
    body = {
        "app": app,
        "schedule": schedule,
        **{k: v for k, v in optional.items() if v is not None},
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{gateway_url.rstrip('/')}/v1/monitors/{name}"
    response = httpx.put(
        url, params={"source": "sdk"}, json=body, headers=headers, timeout=timeout, verify=verify
    )
    if response.status_code not in (200, 201):
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        reason = answer.get("error") or f"HTTP {response.status_code}"
        raise MonitorError(f"monitor {name!r}: {reason}", answer.get("problems"))
    return response.json()
