"""NatsEmitter against a real nats-server: subjects, PubAcks, de-duplication, outages, auth."""

from __future__ import annotations

import asyncio
import logging

import attrs
import pytest
from nats.js.api import StreamConfig
from nats_helpers import held, make_events

from wafermon import (
    EventBatch,
    FieldValueError,
    PermanentError,
    RetryableError,
    Seconds,
    Secret,
    encode_ndjson,
)
from wafermon.config import make_config_converter
from wafermon_backend_nats import subject_token
from wafermon_backend_nats.emitter import EmitterSettings, NatsEmitter


def emitter(url: str, names: dict, **settings) -> NatsEmitter:
    own = {k: v for k, v in names.items() if k in ("stream", "subject_prefix")}
    return NatsEmitter("queue", EmitterSettings(servers=[url], **{**own, **settings}))


async def test_each_event_is_a_message_on_its_site_and_app_subject(nats_url, names, raw):
    events = make_events(3, app="etch") + make_events(2, site="fab2", app="litho.v2 *x>")
    batch = EventBatch.from_ndjson(encode_ndjson(events))  # what a sidecar hands over
    em = emitter(nats_url, names)
    await em.start()
    try:
        await em.emit(batch)
        # emit has returned: every PubAck is in, so the stream holds them all right now.
        stored = await held(raw, names["stream"])
    finally:
        await em.close()
    prefix = names["subject_prefix"]
    assert [s for s, _, _ in stored] == [f"{prefix}.fab1.etch"] * 3 + [
        f"{prefix}.fab2.litho_v2__x_"
    ] * 2
    assert [i for _, _, i in stored] == [str(e.event_id) for e in events]
    assert [b + b"\n" for _, b, _ in stored] == batch.ndjson.splitlines(keepends=True)
    assert not batch.decoded  # the lines went out as received
    assert em.stats()["published"] == 5


async def test_a_retried_batch_is_dropped_by_the_server_as_duplicates(nats_url, names, raw):
    events = make_events(50)
    em = emitter(nats_url, names)
    await em.start()
    try:
        await em.emit(events)
        await em.emit(events)  # the router's retry after a timeout
        await em.emit(events[10:20] + make_events(5, start=50))
    finally:
        await em.close()
    info = await raw.stream_info(names["stream"])
    assert info.state.messages == 55
    assert em.stats()["duplicates"] == 60
    ids = [i for _, _, i in await held(raw, names["stream"])]
    assert len(set(ids)) == 55


async def test_stream_is_created_with_the_configured_limits(nats_url, names, raw):
    em = emitter(
        nats_url, names, duplicate_window=Seconds(30), max_age=Seconds(3600), max_bytes=2**20
    )
    await em.start()
    await em.close()
    config = (await raw.stream_info(names["stream"])).config
    assert config.subjects == [f"{names['subject_prefix']}.>"]
    assert (config.duplicate_window, config.max_age, config.max_bytes) == (30, 3600, 2**20)
    assert config.storage == "file"


async def test_a_stream_overlapping_another_is_refused_with_the_servers_reason(
    nats_url, names, raw
):
    owner = emitter(nats_url, names)
    await owner.start()
    await owner.close()
    other = emitter(nats_url, {**names, "stream": names["stream"] + "_OTHER"})
    with pytest.raises(RetryableError, match="subjects overlap"):
        await other.start()


async def test_no_pubAck_is_a_retryable_error(nats_url, names, raw):
    """Without a stream for the subject nobody acknowledges: emit must not return."""
    em = emitter(nats_url, names, create_stream=False, ack_timeout=Seconds(2))
    await em.start()
    try:
        with pytest.raises(RetryableError, match="PubAck"):
            await em.emit(make_events(3))
        await raw.add_stream(
            StreamConfig(name=names["stream"], subjects=[f"{names['subject_prefix']}.>"])
        )
        await em.emit(make_events(3))  # the same emitter, once the stream exists
    finally:
        await em.close()
    assert (await raw.stream_info(names["stream"])).state.messages == 3


async def test_a_full_stream_refuses_and_emit_raises(nats_url, names):
    em = emitter(nats_url, names, max_bytes=4096)
    await em.start()
    try:
        with pytest.raises(RetryableError, match=r"no PubAck|maximum bytes"):
            await em.emit(make_events(100))
        assert not (await em.health()).ok
    finally:
        await em.close()


async def test_in_flight_publishes_are_bounded(nats_url, names, raw):
    em = emitter(nats_url, names, max_in_flight=7)
    await em.start()
    seen = []
    try:
        js = em._link.js

        async def sample():
            while True:
                seen.append(js.publish_async_pending())
                await asyncio.sleep(0)

        sampler = asyncio.create_task(sample())
        await em.emit(make_events(2000))
        sampler.cancel()
    finally:
        await em.close()
    assert 0 < max(seen) <= 7
    assert (await raw.stream_info(names["stream"])).state.messages == 2000


async def test_server_down_is_retryable_and_nothing_is_lost_after_restart(
    nats_server, tmp_path, names
):
    server = nats_server()
    em = emitter(server.url, names, ack_timeout=Seconds(3))
    try:
        await em.start()
        before = make_events(200)
        await em.emit(before)
        server.stop()
        during = make_events(200, start=200)
        for _ in range(2):  # while the server is away, every attempt fails fast
            with pytest.raises(RetryableError):
                await asyncio.wait_for(em.emit(during), 30)
        assert not (await em.health()).ok
        server.start()  # same port, same store
        for _ in range(50):  # the router's backoff: retry until it takes the batch
            try:
                await em.emit(during)
                break
            except RetryableError:
                await asyncio.sleep(0.2)
        await em.emit(before)  # an old batch sent again: the store kept its ids
        assert (await em.health()).ok
        js = em._link.js
        stored = await held(js, names["stream"])
    finally:
        await em.close()
        server.stop()
    assert sorted(i for _, _, i in stored) == sorted(str(e.event_id) for e in before + during)


async def test_start_fails_fast_when_the_server_is_down(names):
    from nats_helpers import free_port

    em = emitter(f"nats://127.0.0.1:{free_port()}", names)
    with pytest.raises(RetryableError, match="cannot connect"):
        await asyncio.wait_for(em.start(), 20)  # nats-py's defaults would retry for minutes
    await em.close()


async def test_token_auth_and_the_token_never_shows(nats_server, tmp_path, names, caplog):
    server = nats_server('authorization { token: "s3cret-token-value" }\n')
    caplog.set_level(logging.DEBUG)
    try:
        wrong = emitter(server.url, names, token=Secret("not-the-token"))
        with pytest.raises(RetryableError) as refused:
            await wrong.start()
        await wrong.close()
        assert "not-the-token" not in str(refused.value)
        good = emitter(server.url, names, token=Secret("s3cret-token-value"))
        await good.start()
        await good.emit(make_events(3))
        assert "s3cret" not in repr(good.settings)
        await good.close()
    finally:
        server.stop()
    assert "s3cret" not in caplog.text
    assert "not-the-token" not in caplog.text


async def test_user_password_auth(nats_server, tmp_path, names):
    server = nats_server("authorization { user: wm, password: pw-123456 }\n")
    try:
        em = emitter(server.url, names, user="wm", password=Secret("pw-123456"))
        await em.start()
        await em.emit(make_events(2))
        await em.close()
        bad = emitter(server.url, names, user="wm", password=Secret("nope"))
        with pytest.raises(RetryableError):
            await bad.start()
        await bad.close()
    finally:
        server.stop()


async def test_an_event_larger_than_max_payload_is_dead_lettered(nats_server, tmp_path, names):
    server = nats_server("max_payload: 2048\n")
    events = make_events(3)
    events[1] = attrs.evolve(events[1], metadata={"blob": "x" * 4000})
    try:
        em = emitter(server.url, names)
        await em.start()
        with pytest.raises(PermanentError) as refused:
            await em.emit(events)
        assert refused.value.event_ids == [str(events[1].event_id)]
        js = em._link.js
        stored = await held(js, names["stream"])
        await em.close()
    finally:
        server.stop()
    assert [i for _, _, i in stored] == [str(events[0].event_id), str(events[2].event_id)]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"servers": ["nats://user:pw@127.0.0.1:4222"]}, "servers"),
        ({"servers": ["http://127.0.0.1:4222"]}, "servers"),
        ({"servers": []}, "servers"),
        ({"password": "x"}, "password"),
        ({"user": "u", "token": "t"}, "token"),
        ({"stream": "has.dot"}, "stream"),
        ({"subject_prefix": "a.>"}, "subject_prefix"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"duplicate_window": 0}, "duplicate_window"),
    ],
)
def test_bad_settings_name_the_field(config, field):
    converter = make_config_converter(__import__("pathlib").Path("."))
    with pytest.raises(Exception) as caught:  # noqa: PT011 - cattrs wraps the FieldValueError
        converter.structure(config, EmitterSettings)
    found = [caught.value, *getattr(caught.value, "exceptions", [])]
    assert any(isinstance(e, FieldValueError) and e.field == field for e in found), found


def test_subject_tokens():
    assert subject_token("fab-1_A") == "fab-1_A"
    assert subject_token("my.app v2>*") == "my_app_v2__"
    assert subject_token("") == "_"
