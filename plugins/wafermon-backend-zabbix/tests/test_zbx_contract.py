"""wafermon.testing's Emitter contract run against the real Zabbix server scripts/services starts.

Every part applies to the Zabbix emitter:

- settings errors: an unknown key (with its line) and wrongly typed scalars are named; no
  setting is required (the trapper defaults to 127.0.0.1:10051), so the missing-key check has
  nothing to remove; the nested ``api`` section is not a scalar and is checked by its own
  ``ApiSettings`` (test_zbx_settings.py). The API password (found by the kit in the nested
  ``api`` section) must not appear in any message.
- health: a TCP check of the trapper port; never raises, False with the address when it is
  closed, and a closed trapper makes ``emit`` raise RetryableError.
- retries and cancellation: a batch sent again, overlapping or after a cancelled send loses
  nothing; Zabbix keeps one value per (item, clock, ns) and each value carries its event's
  clock and ns, so the backend is idempotent (``idempotent = True``).

What needs care is Zabbix's own timing, not the contract: a new host's items are refused until
the server's configuration cache has them. So each test gets its own host (``host_prefix``),
provisioned and warmed up with one event of the contract's app before the contract's emitter
sends anything; ``stored_ids`` reads the ``wafermon.event[etch]`` text item's history through
the API once the history syncer has written it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest
from conftest import emit_when_ready, env

import wafermon_backend_zabbix.plugin
from wafermon.testing import EmitterContract, EventFactory, free_port
from wafermon_backend_zabbix import EmitterSettings, ZabbixApi, ZabbixEmitter
from wafermon_backend_zabbix.keys import EVENT_ITEM

TEXT = 4  # history.get's value type of a text item


class TestZabbixEmitterContract(EmitterContract):
    plugin = wafermon_backend_zabbix.plugin
    type_name = "zabbix"
    idempotent = True

    @pytest.fixture
    async def config(self, trapper, api_settings, api) -> Any:
        """A host of its own, provisioned, with the contract's app already discovered."""
        prefix = f"wm-c{uuid.uuid4().hex[:8]}-"
        config = {
            "server": trapper[0],
            "port": trapper[1],
            "host_prefix": prefix,
            "provision": True,
            "api": {
                "url": api_settings.url,
                "user": api_settings.user,
                "password": env("WAFERMON_TEST_ZABBIX_PASSWORD"),
            },
        }
        settings = EmitterSettings(
            server=trapper[0], port=trapper[1], host_prefix=prefix, provision=True, api=api_settings
        )
        warm = ZabbixEmitter("warm-up", settings)
        await warm.start()
        try:
            await emit_when_ready(warm, [EventFactory()(site_id="fab1", app="etch")])
        finally:
            await warm.close()
        yield config
        hosts = await api.call("host.get", filter={"host": [f"{prefix}fab1"]}, output=["hostid"])
        if hosts:
            await api.call("host.delete", *[h["hostid"] for h in hosts])

    @pytest.fixture
    def down_config(self) -> dict[str, Any]:
        return {"server": "127.0.0.1", "port": free_port(), "timeout": "2s"}

    @pytest.fixture
    def stored_ids(self, config: dict[str, Any], api: ZabbixApi) -> Any:
        host = f"{config['host_prefix']}fab1"

        async def read() -> list[str]:
            # Values show 0.4-1 s after the sender's answer: read until two reads agree.
            deadline, last = time.monotonic() + 30, None
            while True:
                ids = await _event_ids(api, host)
                if ids == last or time.monotonic() > deadline:
                    return ids
                last = ids
                await asyncio.sleep(1.5)

        return read


async def _event_ids(api: ZabbixApi, host: str) -> list[str]:
    items = await api.call(
        "item.get", host=host, filter={"key_": [f"{EVENT_ITEM}[etch]"]}, output=["itemid"]
    )
    assert items, f"no {EVENT_ITEM}[etch] item on {host}"
    rows = await api.call(
        "history.get", history=TEXT, itemids=[items[0]["itemid"]], output=["value"]
    )
    return [orjson.loads(r["value"])["event_id"] for r in rows]
