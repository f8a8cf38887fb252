"""ensure_stream against a real nats-server, when several components create a stream at once."""

from __future__ import annotations

import asyncio
import uuid

import nats
from nats.js.api import StreamConfig

from wafermon_backend_nats.connection import ensure_stream


async def test_components_creating_a_stream_at_once_all_find_it(nats_url):
    """The server now and then refuses one of simultaneous creations as "subjects overlap"
    (CI saw two gateways' consumers race on the dead-letter stream). That stream is the one
    we wanted, not an error. The race is rare (about 1 round in 200 here), hence the rounds."""
    conns = [await nats.connect(nats_url, connect_timeout=2) for _ in range(8)]
    try:
        contexts = [nc.jetstream(timeout=5) for nc in conns]
        for _ in range(500):
            tag = uuid.uuid4().hex[:10]
            config = StreamConfig(name=f"RACE_{tag}", subjects=[f"race{tag}.>"])
            await asyncio.gather(*(ensure_stream(js, config) for js in contexts))
            assert (await contexts[0].stream_info(config.name)).config.name == config.name
            await contexts[0].delete_stream(config.name)
    finally:
        await asyncio.gather(*(nc.close() for nc in conns))
