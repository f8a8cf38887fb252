"""WebhookEmitter against a real local receiver (webhook_receiver.py) over HTTP."""

from __future__ import annotations

import pytest
import wafermon_backend_webhook.plugin
from wafermon_backend_webhook.emitter import WebhookEmitter, WebhookSettings
from webhook_receiver import SECRET, running_receiver

from wafermon import (
    EventBatch,
    PermanentError,
    RetryableError,
    Secret,
    encode_ndjson,
    to_json_dict,
)
from wafermon.config import load_config
from wafermon.errors import ConfigError
from wafermon.plugins import Plugins


def emitter(url: str, **settings) -> WebhookEmitter:
    settings.setdefault("secret", Secret(SECRET))
    settings.setdefault("backoff", 0.05)
    return WebhookEmitter("hook", WebhookSettings(url=Secret(url + "/hook"), **settings))


async def started(url: str, **settings) -> WebhookEmitter:
    hook = emitter(url, **settings)
    await hook.start()
    return hook


async def test_batch_is_posted_signed_with_custom_headers(receiver, make_events):
    events = make_events(3)
    hook = await started(receiver.url, headers={"Authorization": Secret("Bearer t0k")})
    await hook.emit(events)
    await hook.close()
    [request] = receiver.requests
    assert request["signed"] is True
    assert request["status"] == 200
    assert request["headers"]["authorization"] == "Bearer t0k"
    assert request["headers"]["content-type"] == "application/json"
    body = request["body"]
    assert body["count"] == 3
    assert body["events"] == [to_json_dict(e) for e in events]
    assert request["headers"]["x-wafermon-batch-id"] == body["batch_id"]


async def test_a_spooled_batch_is_posted_without_decoding_it(receiver, make_events):
    events = make_events(4)
    batch = EventBatch.from_ndjson(encode_ndjson(events))
    hook = await started(receiver.url)
    await hook.emit(batch)
    await hook.close()
    assert not batch.decoded  # the NDJSON lines went out as they were
    [request] = receiver.accepted
    assert request["body"]["events"] == [to_json_dict(e) for e in events]


async def test_throttled_then_recovers_honouring_retry_after(receiver, make_events):
    events = make_events(2)
    await receiver.command(plan=[{"status": 429, "retry_after": "1"}, {"status": 503}])
    hook = await started(receiver.url)
    await hook.emit(events)
    await hook.close()
    first, second, third = receiver.requests
    assert [r["status"] for r in receiver.requests] == [429, 503, 200]
    assert second["at"] - first["at"] >= 0.95  # waited what Retry-After asked
    assert first["body"]["batch_id"] == third["body"]["batch_id"]  # same batch, same id
    assert hook.stats()["retries"] == 2


async def test_retry_after_beyond_the_cap_hands_back_to_the_router(receiver, make_events):
    await receiver.command(plan=[{"status": 503, "retry_after": "120"}])
    hook = await started(receiver.url, max_retry_after=5)
    with pytest.raises(RetryableError, match=r"503.*wait 120s"):
        await hook.emit(make_events(1))
    assert len(receiver.requests) == 1  # did not sleep two minutes inside emit
    await hook.emit(make_events(1))  # the router's retry later: the receiver recovered
    await hook.close()
    assert [r["status"] for r in receiver.requests] == [503, 200]


async def test_server_errors_exhaust_attempts_then_recover(receiver, make_events):
    events = make_events(2)
    await receiver.command(plan=[{"status": 500, "body": "db down"}] * 3)
    hook = await started(receiver.url, attempts=3)
    with pytest.raises(RetryableError, match="500: db down"):
        await hook.emit(events)
    assert not (await hook.health()).ok
    await hook.emit(events)
    assert (await hook.health()).ok
    await hook.close()
    assert [r["status"] for r in receiver.requests] == [500, 500, 500, 200]


@pytest.mark.parametrize("status", [400, 404, 410])
async def test_other_4xx_is_permanent_with_the_answer(receiver, make_events, status):
    await receiver.command(plan=[{"status": status, "body": f"nope {status}: unknown tenant"}])
    hook = await started(receiver.url)
    with pytest.raises(PermanentError, match=f"answered {status}: nope {status}: unknown") as info:
        await hook.emit(make_events(2))
    await hook.close()
    assert info.value.event_ids is None  # the whole batch
    assert len(receiver.requests) == 1  # never retried


async def test_a_wrong_secret_is_refused_by_the_receiver(receiver, make_events):
    hook = await started(receiver.url, secret=Secret("not-the-secret"))
    with pytest.raises(PermanentError, match=r"401: .*bad signature"):
        await hook.emit(make_events(1))
    await hook.close()
    assert receiver.requests[0]["signed"] is False


async def test_too_large_bodies_are_split(receiver, make_events):
    events = make_events(5)
    await receiver.command(max_events=2)
    hook = await started(receiver.url)
    await hook.emit(events)
    await hook.close()
    got = [e["event_id"] for r in receiver.accepted for e in r["body"]["events"]]
    assert got == [str(e.event_id) for e in events]
    assert all(r["body"]["count"] <= 2 for r in receiver.accepted)


async def test_a_refused_chunk_names_only_its_events(receiver, make_events):
    events = make_events(5)
    await receiver.command(plan=[{"status": 200}, {"status": 422, "body": "bad chunk"}])
    hook = await started(receiver.url, max_batch_events=2)
    with pytest.raises(PermanentError, match="422: bad chunk") as info:
        await hook.emit(events)
    await hook.close()
    assert info.value.event_ids == [e.event_id for e in events[2:4]]
    assert [r["status"] for r in receiver.requests] == [200, 422, 200]


async def test_refused_connection_is_retryable(make_events):
    async with running_receiver() as gone:
        url = gone.url
    hook = await started(url, attempts=2)
    with pytest.raises(RetryableError, match="ConnectError"):
        await hook.emit(make_events(1))
    await hook.close()


async def test_unsigned_without_a_secret_and_nothing_for_an_empty_batch(make_events):
    async with running_receiver(secret=None) as receiver:
        hook = await started(receiver.url, secret=None)
        await hook.emit([])
        assert receiver.requests == []  # an empty batch posts nothing
        await hook.emit(make_events(1))
        await hook.close()
        [request] = receiver.accepted
        assert "x-wafermon-signature" not in request["headers"]


def test_config_names_the_bad_setting_and_masks_the_url(tmp_path):
    plugins = Plugins()
    plugins.register(wafermon_backend_webhook.plugin, "webhook")
    site = tmp_path / "site.yaml"
    site.write_text(
        "site_id: fab1\nbackends:\n  - name: hook\n    type: webhook\n    config:\n"
        "      url: https://hooks.example.test/T0/B0/sekrit\n      preset: discord\n"
    )
    with pytest.raises(
        ConfigError, match=r"backends\[0\].config.preset \(line 7\): must be one of"
    ):
        load_config(site).build("backends", plugins)
    site.write_text(site.read_text().replace("discord", "slack"))
    [hook] = load_config(site).build("backends", plugins)
    assert "sekrit" not in repr(hook.settings)
    assert "sekrit" not in str(load_config(site).masked(plugins))
