"""NatsConsumer against a real nats-server: bounded fetches, acks, redelivery, dead letters, lag."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from nats_helpers import NatsServer, make_events

from wafermon import (
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_WHERE_HEADER,
    RetryableError,
    Seconds,
    StreamBatch,
)
from wafermon_backend_nats.consumer import ConsumerSettings, NatsConsumer
from wafermon_backend_nats.emitter import EmitterSettings, NatsEmitter


def consumer(url: str, names: dict, **settings) -> NatsConsumer:
    return NatsConsumer("events", ConsumerSettings(servers=[url], **{**names, **settings}))


async def publish(url: str, names: dict, events) -> None:
    own = {k: v for k, v in names.items() if k in ("stream", "subject_prefix")}
    em = NatsEmitter("queue", EmitterSettings(servers=[url], **own))
    await em.start()
    try:
        await em.emit(events)
    finally:
        await em.close()


async def drain(member: NatsConsumer, want: int, batch: int = 10) -> list[bytes]:
    """Fetch and commit until ``want`` messages came; the bodies in order."""
    bodies: list[bytes] = []
    for _ in range(200):
        got = await member.fetch(batch, timeout=0.5)
        assert len(got) <= batch
        bodies += [m.body for m in got.messages]
        await got.commit()
        if len(bodies) >= want:
            break
    return bodies


async def test_fetch_is_bounded_and_commit_acks(nats_url, names):
    events = make_events(25)
    await publish(nats_url, names, events)
    member = consumer(nats_url, names)
    await member.start()
    try:
        first = await member.fetch(10, timeout=2)
        assert len(first) == 10
        assert first.messages[0].headers["Nats-Msg-Id"] == str(events[0].event_id).encode()
        assert first.messages[0].where == f"{names['stream']}/wafermon-gateway#1"
        key = f"{names['stream']}/wafermon-gateway"
        assert await member.lag() == {key: 25}  # 15 waiting + 10 fetched, not acked
        await first.commit()
        assert await member.lag() == {key: 15}
        rest = await drain(member, 15)
        assert await member.lag() == {key: 0}
        empty = await member.fetch(10, timeout=0.3)
        assert len(empty) == 0
        await empty.commit()
    finally:
        await member.close()
    ids = [orjson.loads(b)["event_id"] for b in [m.body for m in first.messages] + rest]
    assert ids == [str(e.event_id) for e in events]


async def test_a_fetch_that_times_out_is_an_empty_batch_never_an_error(nats_url, names):
    """The contract: a timeout is an empty batch, whichever TimeoutError nats-py raised."""
    member = consumer(nats_url, names)
    await member.start()
    try:
        for timeout in [0.001, 0.005, 0.01, 0.05] * 10:
            assert len(await member.fetch(10, timeout=timeout)) == 0
    finally:
        await member.close()


async def test_a_fetch_for_one_message(nats_url, names):
    await publish(nats_url, names, make_events(3))
    member = consumer(nats_url, names)
    await member.start()
    try:
        got = [await member.fetch(1, timeout=2) for _ in range(3)]
        assert [len(b) for b in got] == [1, 1, 1]
        for batch in got:
            await batch.commit()
        assert sum((await member.lag()).values()) == 0
    finally:
        await member.close()


async def test_group_members_share_the_messages(nats_url, names):
    events = make_events(200)
    await publish(nats_url, names, events)
    a, b = consumer(nats_url, names), consumer(nats_url, names)
    await asyncio.gather(a.start(), b.start())  # both create the durable at once
    try:
        got_a, got_b = await asyncio.gather(drain(a, 100, 20), drain(b, 100, 20))
        more = await drain(a, 200 - len(got_a) - len(got_b), 20)
    finally:
        await asyncio.gather(a.close(), b.close())
    ids = [orjson.loads(x)["event_id"] for x in got_a + got_b + more]
    assert sorted(ids) == sorted(str(e.event_id) for e in events)  # each once
    assert got_a
    assert got_b


async def test_an_uncommitted_batch_is_delivered_again_after_ack_wait(nats_url, names, raw):
    await publish(nats_url, names, make_events(5))
    first = consumer(nats_url, names, ack_wait=Seconds(1))
    await first.start()
    taken = await first.fetch(5, timeout=2)
    assert len(taken) == 5
    await first._link.nc.close()  # a gateway killed before its store committed: no ack, no nak
    second = consumer(nats_url, names, ack_wait=Seconds(1))
    await second.start()
    try:
        again = await drain(second, 5)
    finally:
        await second.close()
        await first.close()
    assert again == [m.body for m in taken.messages]


async def test_a_member_that_closes_hands_its_batch_over_at_once(nats_url, names):
    await publish(nats_url, names, make_events(5))
    first = consumer(nats_url, names, ack_wait=Seconds(600))
    await first.start()
    taken = await first.fetch(5, timeout=2)
    await first.close()  # a stopping gateway: nak'ed, not left for ack_wait (10 min here)
    second = consumer(nats_url, names, ack_wait=Seconds(600))
    await second.start()
    try:
        again = await asyncio.wait_for(drain(second, 5), 20)
    finally:
        await second.close()
    assert again == [m.body for m in taken.messages]


async def test_poison_goes_to_the_dead_letter_subject_and_does_not_block(nats_url, names, raw):
    events = make_events(4)
    await publish(nats_url, names, events[:2])
    await raw.publish(f"{names['subject_prefix']}.fab1.etch", b"\x00not json")
    await publish(nats_url, names, events[2:])
    member = consumer(nats_url, names)
    await member.start()
    try:
        batch: StreamBatch = await member.fetch(10, timeout=2)
        assert len(batch) == 5
        poison = batch.messages[2]
        await batch.dead_letter(poison, "EventDecodeError: line 1:\n not JSON")
        await batch.commit()
        assert sum((await member.lag()).values()) == 0
    finally:
        await member.close()
    info = await raw.stream_info(names["dead_letter_stream"])
    assert info.state.messages == 1
    dead = await raw.get_msg(names["dead_letter_stream"], 1)
    assert dead.subject == names["dead_letter_subject"]
    assert dead.data == b"\x00not json"
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == "EventDecodeError: line 1: not JSON"
    assert dead.headers[DEAD_LETTER_WHERE_HEADER] == poison.where


async def test_the_consumer_survives_a_server_restart(nats_server, tmp_path, names):
    server = nats_server()
    member = consumer(server.url, names)
    try:
        await publish(server.url, names, make_events(10))
        await member.start()
        assert len(await drain(member, 4, batch=4)) == 4
        server.stop()
        with pytest.raises(RetryableError):
            await fetch_until_it_fails(member)
        await publish_when_up(server, names, make_events(10, start=10))
        rest = await drain(member, 16)
        assert len(rest) == 16  # the durable kept its place: nothing again, nothing lost
        assert sum((await member.lag()).values()) == 0
    finally:
        await member.close()
        server.stop()


async def fetch_until_it_fails(member: NatsConsumer) -> None:
    """Empty batches while nats-py reconnects, then RetryableError once it gave up."""
    for _ in range(20):
        await member.fetch(10, timeout=0.5)
        await asyncio.sleep(0.2)


async def publish_when_up(server: NatsServer, names: dict, events) -> None:
    server.start()
    await publish(server.url, names, events)


async def test_fetch_fails_fast_when_nothing_listens(names):
    from nats_helpers import free_port

    member = consumer(f"nats://127.0.0.1:{free_port()}", names)
    with pytest.raises(RetryableError):
        await asyncio.wait_for(member.fetch(10, timeout=1), 20)
    assert not (await member.health()).ok
    await member.close()
