"""wafermon.testing's Emitter contract, run against the NATS emitter and a real nats-server."""

from __future__ import annotations

import pytest
from nats_helpers import free_port, held

import wafermon_backend_nats.plugin
from wafermon.testing import EmitterContract


class TestNatsEmitterContract(EmitterContract):
    plugin = wafermon_backend_nats.plugin
    type_name = "nats"
    idempotent = True  # Nats-Msg-Id = event_id inside the duplicate window

    @pytest.fixture
    def config(self, nats_url, names):
        return {"servers": [nats_url], "stream": names["stream"],
                "subject_prefix": names["subject_prefix"]}  # fmt: skip

    @pytest.fixture
    def down_config(self, names):
        return {"servers": [f"nats://127.0.0.1:{free_port()}"], "stream": names["stream"]}

    @pytest.fixture
    def stored_ids(self, raw, names):
        async def read() -> list[str]:
            return [msg_id for _, _, msg_id in await held(raw, names["stream"])]

        return read
