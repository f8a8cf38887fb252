"""Alert notifier benchmark (issue 19). ``run(quick)`` like the others.

- notifier_webhook: notifications/s through the ``webhook`` notifier (the alert as JSON, an
  HMAC-SHA256 signature, a delivery id, one POST per alert) into the same local Starlette
  receiver the webhook backend's benchmark uses, vs a bare httpx POST of the very bodies the
  notifier sent (pre-encoded, no signature) to that receiver. The ratio is what building,
  signing and classifying a notification costs on top of the HTTP round trip.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime, timedelta

from cloudwatch_webhook_bench import arates, receiver

ALERTS = 100  # distinct alerts, sent round-robin


def sample_alerts(count: int) -> list:
    from wafermon import Alert

    start = datetime(2026, 12, 4, 9, tzinfo=UTC)
    return [
        Alert(
            rule="monitor_failing",
            severity=("critical", "warning", "info")[i % 3],
            summary=f"monitor etch-lots: {i % 5 + 1} failed run(s) in a row",
            description=f"Job LOT-{i} of etch failed: ChamberFault pressure drop",
            site_id="fab1",
            fingerprint=uuid.uuid4().hex[:24],
            status="resolved" if i % 4 == 0 else "firing",
            labels={"site_id": "fab1", "app": "etch", "monitor": "etch-lots",
                    "business_key": f"LOT-{i}"},
            starts_at=start + timedelta(minutes=i),
            ends_at=start + timedelta(minutes=i + 5) if i % 4 == 0 else None,
            time=start + timedelta(minutes=i),
            event_ids=(uuid.uuid4(),),
            details={"failures": i % 5 + 1},
        )
        for i in range(count)
    ]  # fmt: skip


async def notifier_webhook(seconds: float, rounds: int) -> dict[str, object]:
    import httpx
    from wafermon_backend_webhook.notifier import WebhookNotifier, WebhookNotifierSettings

    from wafermon import Secret

    alerts = sample_alerts(ALERTS)
    async with receiver() as url, httpx.AsyncClient() as http:
        notifier = WebhookNotifier(
            "bench", WebhookNotifierSettings(url=Secret(url), secret=Secret("bench-secret"))
        )
        await notifier.start()
        bodies = [notifier.body(a) for a in alerts]
        headers = {"Content-Type": "application/json"}
        turn = iter(range(10**12))

        async def notify() -> None:
            await notifier.notify(alerts[next(turn) % ALERTS])

        async def post() -> None:
            await http.post(url, content=bodies[next(turn) % ALERTS], headers=headers)

        found = await arates({"notify": notify, "bare": post}, 1, seconds, rounds)
        await notifier.close()
    sent, bare = found["notify"], found["bare"]
    return {
        "what": "webhook notifier (signed alert JSON, one POST per alert) into a local "
        "Starlette receiver",
        "notifications_per_s": round(sent, 1),
        "baseline_bare_httpx_post_per_s": round(bare, 1),
        "ratio_to_baseline": round(sent / bare, 3),
    }


def run(quick: bool) -> dict[str, object]:
    seconds, rounds = (0.5, 3) if quick else (2.0, 5)
    print("bench notifier_webhook ...", file=sys.stderr, flush=True)
    return {"notifier_webhook": asyncio.run(notifier_webhook(seconds, rounds))}


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
