"""The wafermon.testing contracts, run against the webhook backend and notifier and a real
receiver.

The receiver (webhook_receiver.py) is a Starlette app on a real socket that checks each
request's signature; "down" is a URL on a port nobody listens on. A webhook cannot take an
event twice without the receiver seeing it twice (receivers dedupe by X-Wafermon-Delivery),
so the suite checks nothing is lost, not that nothing repeats.
"""

from __future__ import annotations

import pytest
import wafermon_backend_webhook.plugin
from webhook_receiver import SECRET

from wafermon.testing import EmitterContract, NotifierContract, free_port


class TestWebhookEmitterContract(EmitterContract):
    plugin = wafermon_backend_webhook.plugin
    type_name = "webhook"
    idempotent = False

    @pytest.fixture
    def config(self, receiver):
        return {"url": f"{receiver.url}/hook", "secret": SECRET, "attempts": 2, "backoff": "10ms"}

    @pytest.fixture
    def down_config(self):
        return {"url": f"http://127.0.0.1:{free_port()}/hook", "attempts": 1, "timeout": "2s"}

    @pytest.fixture
    def secret_values(self, receiver):
        return [SECRET, f"{receiver.url}/hook"]

    @pytest.fixture
    def stored_ids(self, receiver):
        async def read() -> list[str]:
            return [e["event_id"] for r in receiver.accepted for e in r["body"]["events"]]

        return read


class TestWebhookNotifierContract(NotifierContract):
    """The ``webhook`` notifier: one signed POST of the alert per notify."""

    plugin = wafermon_backend_webhook.plugin
    type_name = "webhook"

    @pytest.fixture
    def config(self, receiver):
        return {"url": f"{receiver.url}/hook", "secret": SECRET}

    @pytest.fixture
    def down_config(self):
        return {"url": f"http://127.0.0.1:{free_port()}/hook", "timeout": "2s"}

    @pytest.fixture
    def secret_values(self, receiver):
        return [SECRET, f"{receiver.url}/hook"]

    @pytest.fixture
    def delivered(self, receiver):
        async def rules() -> list[str]:
            return [r["body"]["rule"] for r in receiver.accepted]

        return rules
