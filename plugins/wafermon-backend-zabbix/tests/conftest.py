"""Fixtures against the real Zabbix server and API scripts/services starts.

Needs WAFERMON_TEST_ZABBIX_* (``eval "$(scripts/services start zabbix)"``); fails without them.
Each test uses its own site ids (so its own Zabbix hosts) and deletes those hosts afterwards.
``reload_cache`` asks the server to load new items now instead of after CacheUpdateFrequency.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wafermon import App, Entity, ErrorInfo, Event, Metrics, RetryableError, Secret
from wafermon_backend_zabbix import ApiSettings, EmitterSettings, ZabbixApi, ZabbixEmitter

_seq = itertools.count()


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f'{name} is not set: eval "$(scripts/services start zabbix)"')
    return value


@pytest.fixture(scope="session")
def api_settings() -> ApiSettings:
    return ApiSettings(
        url=env("WAFERMON_TEST_ZABBIX_API_URL"),
        user=env("WAFERMON_TEST_ZABBIX_USER"),
        password=Secret(env("WAFERMON_TEST_ZABBIX_PASSWORD")),
    )


@pytest.fixture(scope="session")
def trapper() -> tuple[str, int]:
    host, port = env("WAFERMON_TEST_ZABBIX_TRAPPER").rsplit(":", 1)
    return host, int(port)


def reload_cache() -> None:
    conf = env("WAFERMON_TEST_ZABBIX_SERVER_CONF")
    subprocess.run(
        ["zabbix_server", "-c", conf, "-R", "config_cache_reload"], check=True, capture_output=True
    )


@pytest.fixture
async def api(api_settings):
    zbx = ZabbixApi(api_settings)
    yield zbx
    await zbx.close()


@pytest.fixture
async def site(api):
    """A fresh site id; its Zabbix host is deleted after the test."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    hosts = await api.call("host.get", filter={"host": [f"wafermon-{name}"]}, output=["hostid"])
    if hosts:
        await api.call("host.delete", *[h["hostid"] for h in hosts])


@pytest.fixture
def emitter_settings(trapper, api_settings):
    def make(**overrides: Any) -> EmitterSettings:
        base = {"server": trapper[0], "port": trapper[1], "api": api_settings}
        return EmitterSettings(**{**base, **overrides})

    return make


@pytest.fixture
async def emitter(emitter_settings):
    em = ZabbixEmitter("zbx", emitter_settings(provision=True))
    await em.start()
    yield em
    await em.close()


def make_event(site_id: str, *, app: str = "etch", kind: str = "finished", **overrides) -> Event:
    n = next(_seq)
    return Event(
        event_id=uuid.uuid4(),
        kind=kind,
        time=overrides.pop("time", None)
        or datetime.now(UTC).replace(microsecond=0)
        - timedelta(seconds=30)
        + timedelta(microseconds=n),
        site_id=site_id,
        app=App(name=app, version="2.0"),
        entity=Entity(type="job", id=overrides.pop("entity_id", f"j{n}"), business_key="LOT-9"),
        metrics=Metrics(duration_s=10.0 + n, cpu_user_s=2.0, cpu_system_s=0.5, mem_max_mb=512.0),
        metadata={"tool": "etch-07"},
        error=ErrorInfo(type="Boom", message="broke") if kind == "failed" else None,
        **overrides,
    )


async def emit_when_ready(emitter: ZabbixEmitter, batch: list[Event], timeout: float = 60.0):
    """Emit, retrying while Zabbix refuses values of items it does not have in its cache yet
    (new host, LLD rule, discovered items), as the router would; reloads the cache meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await emitter.emit(batch)
        except RetryableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.to_thread(reload_cache)
            await asyncio.sleep(0.5)


async def history(api: ZabbixApi, site: str, item_key: str, value_type: int) -> list[dict]:
    items = await api.call(
        "item.get",
        host=f"wafermon-{site}",
        filter={"key_": [item_key]},
        output=["itemid"],
    )
    assert items, f"no item {item_key}"
    return await api.call(
        "history.get",
        history=value_type,
        itemids=[items[0]["itemid"]],
        sortfield="clock",
        output="extend",
    )


async def wait_history(api, site, item_key, value_type, count, timeout=20.0) -> list[dict]:
    """Values are visible 0.4-1 s after the sender's answer (the history syncer's flush)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await history(api, site, item_key, value_type)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.3)
