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
def private_nats(tmp_path):
    server = NatsServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def raw(nats_url):
    """A plain nats-py connection for looking at what the server holds."""
    nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=3)
    yield nc.jetstream(timeout=5)
    await nc.close()
