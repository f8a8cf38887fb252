"""The webhook, slack and teams notifiers against the real local receiver (webhook_receiver.py).

One ``notify`` is one POST: the receiver must see exactly one request per call whatever it
answers, and the error raised must tell the alert engine whether trying again can help.
"""

from __future__ import annotations

import socket
import textwrap
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import wafermon_backend_webhook.plugin
from wafermon_backend_webhook.notifier import (
    DELIVERY_HEADER,
    SlackNotifier,
    TeamsNotifier,
    WebhookNotifier,
)
from webhook_receiver import SECRET, running_receiver

from wafermon import Alert, PermanentError, RetryableError, Secret
from wafermon.config import load_config
from wafermon.plugins import Plugins

STARTED = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def make_alert(**changes) -> Alert:
    alert = Alert(
        rule="monitor-failed",
        severity="critical",
        summary="etch LOT-7 failed 3 times in a row",
        description="Job LOT-7 of etch failed: ChamberFault <pressure> & drop",
        site_id="fab1",
        fingerprint="fp-" + uuid.uuid4().hex[:12],
        labels={"site_id": "fab1", "app": "etch", "business_key": "LOT-7", "monitor": "etch-lots"},
        starts_at=STARTED,
        time=STARTED + timedelta(seconds=5),
        event_ids=(uuid.uuid4(),),
        details={"failures": 3},
        url="http://dash.example/alerts?fingerprint=x",
    )
    return attrs.evolve(alert, **changes)


def resolved(alert: Alert) -> Alert:
    return attrs.evolve(alert, status="resolved", ends_at=STARTED + timedelta(minutes=12))


async def started(cls, url: str, **settings):
    notifier = cls("n", cls.Settings(url=Secret(url), **settings))
    await notifier.start()
    return notifier


@pytest.fixture
async def chat_receiver():
    """A receiver that checks no signature (chat services do not sign)."""
    async with running_receiver(secret=None) as running:
        yield running


def refused_port() -> int:
    """A port nothing listens on (bound then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_notifier_posts_the_alert_signed_with_custom_headers(receiver):
    hook = await started(
        WebhookNotifier,
        receiver.url + "/hook",
        secret=Secret(SECRET),
        headers={"Authorization": Secret("Bearer t0k")},
    )
    alert = make_alert()
    await hook.notify(alert)
    await hook.notify(resolved(alert))
    await hook.close()
    firing, done = receiver.requests
    assert firing["signed"] is True
    assert done["signed"] is True
    assert firing["headers"]["authorization"] == "Bearer t0k"
    body = firing["body"]
    assert body["format"] == "wafermon.alert.v1"
    assert (body["status"], body["fingerprint"], body["severity"]) == (
        "firing",
        alert.fingerprint,
        "critical",
    )
    assert body["labels"]["business_key"] == "LOT-7"
    assert body["starts_at"] == "2026-12-04T09:30:00Z"
    assert body["ends_at"] is None
    assert body["event_ids"] == [str(alert.event_ids[0])]
    assert body["details"] == {"failures": 3}
    assert done["body"]["status"] == "resolved"
    assert done["body"]["ends_at"] == "2026-12-04T09:42:00Z"
    # one delivery id per transition: firing and resolved differ, a retry repeats it
    assert firing["headers"][DELIVERY_HEADER.lower()] != done["headers"][DELIVERY_HEADER.lower()]
    assert hook.stats()["notifications"] == 2


async def test_same_transition_same_delivery_id_on_a_retry(receiver):
    await receiver.command(plan=[{"status": 503}])
    hook = await started(WebhookNotifier, receiver.url + "/hook", secret=Secret(SECRET))
    alert = make_alert()
    with pytest.raises(RetryableError):
        await hook.notify(alert)
    await hook.notify(alert)  # the engine's retry
    await hook.close()
    first, second = receiver.requests
    assert [r["status"] for r in receiver.requests] == [503, 200]
    assert first["headers"][DELIVERY_HEADER.lower()] == second["headers"][DELIVERY_HEADER.lower()]


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_server_errors_are_retryable_after_one_attempt(receiver, status):
    await receiver.command(plan=[{"status": status, "body": "db down"}])
    hook = await started(WebhookNotifier, receiver.url + "/hook", secret=Secret(SECRET))
    with pytest.raises(RetryableError, match=f"answered {status}: db down") as info:
        await hook.notify(make_alert())
    assert info.value.retry_after is None
    assert len(receiver.requests) == 1  # no retry inside notify: the engine owns retries
    assert not (await hook.health()).ok
    await hook.close()


async def test_throttled_429_carries_retry_after(chat_receiver):
    receiver = chat_receiver
    await receiver.command(plan=[{"status": 429, "retry_after": "7", "body": "slow down"}])
    hook = await started(SlackNotifier, receiver.url + "/hook")
    with pytest.raises(RetryableError, match="429: slow down") as info:
        await hook.notify(make_alert())
    assert info.value.retry_after == 7.0
    assert len(receiver.requests) == 1
    await hook.close()


@pytest.mark.parametrize("status", [400, 403, 404, 410])
async def test_other_4xx_is_permanent_with_the_answer(chat_receiver, status):
    receiver = chat_receiver
    await receiver.command(plan=[{"status": status, "body": f"invalid_token {status}"}])
    hook = await started(TeamsNotifier, receiver.url + "/hook")
    with pytest.raises(PermanentError, match=f"answered {status}: invalid_token {status}"):
        await hook.notify(make_alert())
    assert len(receiver.requests) == 1
    await hook.close()


async def test_a_wrong_signing_secret_is_refused_for_good(receiver):
    hook = await started(WebhookNotifier, receiver.url + "/hook", secret=Secret("wrong"))
    with pytest.raises(PermanentError, match=r"401: .*bad signature"):
        await hook.notify(make_alert())
    assert receiver.requests[0]["signed"] is False
    await hook.close()


async def test_connection_refused_is_retryable_and_names_no_url():
    url = f"http://127.0.0.1:{refused_port()}/services/T000/B000/s3cr3tpath"
    hook = await started(SlackNotifier, url)
    with pytest.raises(RetryableError, match="ConnectError") as info:
        await hook.notify(make_alert())
    assert "s3cr3tpath" not in str(info.value)  # a chat hook URL is a credential
    assert "s3cr3tpath" not in repr(hook.settings)
    await hook.close()


async def test_a_slow_receiver_is_a_retryable_timeout(receiver):
    await receiver.command(plan=[{"status": 200, "delay": 2}])
    hook = await started(
        WebhookNotifier, receiver.url + "/hook", secret=Secret(SECRET), timeout=0.3
    )
    with pytest.raises(RetryableError, match="Timeout"):
        await hook.notify(make_alert())
    await hook.close()


async def test_slack_message_is_one_readable_message_per_alert(chat_receiver):
    receiver = chat_receiver
    hook = await started(SlackNotifier, receiver.url + "/hook")
    alert = make_alert()
    await hook.notify(alert)
    await hook.notify(resolved(alert))
    await hook.close()
    firing, done = (r["body"] for r in receiver.accepted)
    assert firing["text"].startswith("🔴 [FIRING] critical: etch LOT-7 failed 3 times")
    text = firing["blocks"][0]["text"]["text"]
    for fact in ("*Severity:* critical", "*Site:* fab1", "*App:* etch", "*Key:* LOT-7",
                 "*Status:* firing", "*Started:* 2026-12-04T09:30:00Z"):  # fmt: skip
        assert fact in text
    assert "ChamberFault &lt;pressure&gt; &amp; drop" in text  # Slack's control characters
    assert "<http://dash.example/alerts?fingerprint=x|Open in wafermon>" in text
    assert done["text"].startswith("✅ [RESOLVED] critical")
    assert "*Resolved:* 2026-12-04T09:42:00Z" in done["blocks"][0]["text"]["text"]


async def test_teams_message_is_an_adaptive_card_per_alert(chat_receiver):
    receiver = chat_receiver
    hook = await started(TeamsNotifier, receiver.url + "/hook")
    await hook.notify(resolved(make_alert(severity="warning")))
    await hook.close()
    [request] = receiver.accepted
    card = request["body"]["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == "[RESOLVED] warning: etch LOT-7 failed 3 times in a row"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Site"] == "fab1"
    assert facts["App"] == "etch"
    assert facts["Key"] == "LOT-7"
    assert facts["Status"] == "resolved"
    assert facts["Resolved"] == "2026-12-04T09:42:00Z"
    assert card["actions"][0]["url"] == "http://dash.example/alerts?fingerprint=x"


def test_notifier_settings_errors_name_the_keys(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(
        textwrap.dedent(
            """\
            site_id: fab1
            notifiers:
              - name: chat
                type: slack
                config: {url: "ftp://nope"}
              - name: hook
                type: webhook
                config: {secret: ""}
              - name: ops
                type: teams
                config: {url: "https://example.org/x", timout: 3}
            """
        )
    )
    plugins = Plugins()
    plugins.register(wafermon_backend_webhook.plugin, "webhook")
    problems = "\n".join(load_config(site).check(plugins))
    assert "notifiers[0].config.url (line 5): must be an http:// or https:// URL" in problems
    assert "notifiers[1].config.url (line 8): required field missing" in problems
    assert "notifiers[1].config.secret (line 8): must not be empty" in problems
    assert (
        "notifiers[2].config.timout (line 11): unknown field; did you mean 'timeout'?" in problems
    )


def test_the_plugin_registers_the_three_notifier_types():
    plugins = Plugins()
    plugins.register(wafermon_backend_webhook.plugin, "webhook")
    types = plugins.types("notifier")
    assert {name: p.cls for name, p in types.items()} == {
        "webhook": WebhookNotifier,
        "slack": SlackNotifier,
        "teams": TeamsNotifier,
    }
