"""Fixtures: the shared nats-server (WAFERMON_TEST_NATS), private ones, events, settings.

Without WAFERMON_TEST_NATS (``eval "$(scripts/services start nats pg)"``; scripts/test does
it) the tests fail; they never skip. Each test works in its own stream and subject prefix.
"""

from __future__ import annotations

import os
import uuid

import nats
import pytest
from nats_helpers import NatsServer


@pytest.fixture
def nats_url() -> str:
    url = os.environ.get("WAFERMON_TEST_NATS")
    if not url:
        pytest.fail('WAFERMON_TEST_NATS is not set: run eval "$(scripts/services start nats)"')
    return url


@pytest.fixture
def names() -> dict[str, str]:
    """A stream name and subject prefix of this test's own."""
    tag = uuid.uuid4().hex[:10]
    return {
        "stream": f"T_{tag}",
        "subject_prefix": f"t{tag}.events",
        "dead_letter_subject": f"t{tag}.dead",
        "dead_letter_stream": f"T_{tag}_DEAD",
    }


@pytest.fixture
def nats_server(tmp_path):
    """``nats_server(config="")``: a private nats-server, started; stopped after the test
    whatever happened (it may be stopped and started in between)."""
    made: list[NatsServer] = []

    def make(config: str = "") -> NatsServer:
        root = tmp_path / f"nats-{len(made)}"
        root.mkdir()
        server = NatsServer(root, config)
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
async def raw(nats_url):
    """A plain nats-py connection for looking at what the server holds."""
    nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=3)
    yield nc.jetstream(timeout=5)
    await nc.close()
