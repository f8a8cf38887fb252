"""Through the core's router, as in a sidecar: throttling is waited out, a refusal ends in the
dead-letter file with the receiver's answer as the reason, nothing else is lost."""

from __future__ import annotations

import asyncio

import orjson
from test_webhook_emitter import emitter

from wafermon import encode_ndjson
from wafermon.router import RetryPolicy, Route, Router
from wafermon.spool import Spool

FAST = RetryPolicy(timeout_s=5, base_delay_s=0.01, max_delay_s=0.05, failure_threshold=5)


async def test_router_waits_out_throttling_and_dead_letters_the_refusal(
    receiver, make_events, tmp_path
):
    events = make_events(6)
    spool = Spool(tmp_path / "spool", ["hook"])
    for i in range(0, 6, 2):  # three records of two events
        spool.append(encode_ndjson(events[i : i + 2]))
    await receiver.command(
        plan=[
            {"status": 429, "retry_after": "1"},  # record 1: throttled, then taken
            {"status": 200},
            {"status": 422, "body": "unknown tenant 'fab1'"},  # record 2: refused for good
        ]
    )
    hook = emitter(receiver.url, max_batch_events=2)
    await hook.start()
    router = Router(
        spool, [Route("hook", hook)], dead_letter_dir=tmp_path / "dl", policy=FAST, batch_bytes=1
    )
    router.start()
    try:
        async with asyncio.timeout(20):
            while router.lag("hook"):
                await asyncio.sleep(0.05)
    finally:
        await router.stop()
        await hook.close()
    delivered = [e["event_id"] for r in receiver.accepted for e in r["body"]["events"]]
    assert delivered == [str(e.event_id) for e in events[:2] + events[4:]]
    dead = [
        orjson.loads(line) for line in (tmp_path / "dl" / "hook.jsonl").read_bytes().splitlines()
    ]
    assert [d["event"]["event_id"] for d in dead] == [str(e.event_id) for e in events[2:4]]
    assert all("the webhook answered 422: unknown tenant 'fab1'" in d["reason"] for d in dead)
    assert router.states["hook"].dead_lettered_events == 2
