"""Slack and Teams presets: readable messages per failure, a digest for bursts, no repeats."""

from __future__ import annotations

import attrs
import pytest
from test_webhook_emitter import started

from wafermon import RetryableError


async def test_slack_posts_one_message_per_failed_job(receiver, make_events):
    batch = make_events(2, kind="failed") + make_events(3, kind="finished")
    hook = await started(receiver.url, preset="slack")
    await hook.emit(batch)
    await hook.close()
    assert len(receiver.accepted) == 2
    for request, event in zip(receiver.accepted, batch, strict=False):
        text = request["body"]["blocks"][0]["text"]["text"]
        assert request["body"]["text"].startswith("Job failed: " + event.entity.business_key)
        for fact in ("*Site:* fab1", "*App:* etch 2.1", f"*Key:* {event.entity.business_key}"):
            assert fact in text
        # the error, with Slack's control characters escaped
        assert "*Error:* ChamberFault: pressure &lt;low&gt; &amp; drop" in text


async def test_slack_digest_for_a_burst(receiver, make_events):
    hook = await started(receiver.url, preset="slack", digest_after=3, digest_lines=4)
    await hook.emit(make_events(7, kind="failed"))
    await hook.close()
    [request] = receiver.accepted
    text = request["body"]["blocks"][0]["text"]["text"]
    assert request["body"]["text"].startswith("7 failures at fab1")
    assert text.count("• etch · LOT-") == 4
    assert "… and 3 more" in text


async def test_teams_card_has_the_facts(receiver, make_events):
    # A subjob failure, keyed by business key and wafer.
    [failed] = make_events(1, kind="failed", sub_key="W07", parent_id="lot-1")
    failed = attrs.evolve(failed, entity=attrs.evolve(failed.entity, type="subjob"))
    hook = await started(receiver.url, preset="teams")
    await hook.emit([failed])
    await hook.close()
    [request] = receiver.accepted
    card = request["body"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    title, factset = card["content"]["body"]
    assert title["text"] == "Subjob failed: LOT-0 / W07 (etch, fab1)"
    facts = {f["title"]: f["value"] for f in factset["facts"]}
    assert facts["Job"] == "lot-1"
    assert facts["Site"] == "fab1"
    assert facts["Key"] == "LOT-0 / W07"
    assert facts["Error"] == "ChamberFault: pressure <low> & drop 0"


async def test_nothing_is_posted_without_failures(receiver, make_events):
    hook = await started(receiver.url, preset="teams")
    await hook.emit(make_events(4, kind="started"))
    await hook.close()
    assert receiver.requests == []


async def test_a_retried_batch_does_not_repost_delivered_messages(receiver, make_events):
    batch = make_events(2, kind="failed")
    # message 1 goes through; message 2 fails on every attempt, then the receiver recovers
    await receiver.command(plan=[{"status": 200}] + [{"status": 502}] * 2)
    hook = await started(receiver.url, preset="slack", attempts=2)
    with pytest.raises(RetryableError, match="502"):
        await hook.emit(batch)
    await hook.emit(batch)  # the router's retry
    await hook.close()
    keys = [r["body"]["text"] for r in receiver.accepted]
    assert keys == ["Job failed: LOT-0 (etch, fab1)", "Job failed: LOT-1 (etch, fab1)"]
