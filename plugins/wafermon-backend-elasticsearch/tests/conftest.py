"""Fixtures against the real Elasticsearch node scripts/services starts (WAFERMON_TEST_ES_URL).

Without it every test here fails (never skips): run ``eval "$(scripts/services start es)"``.
Each test writes under its own index prefix and deletes its indices afterwards.
"""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from wafermon import App, Entity, ErrorInfo, Event, Metrics, Secret, Source
from wafermon_backend_elasticsearch import (
    AdapterSettings,
    ElasticsearchEmitter,
    ElasticsearchQueryAdapter,
    EmitterSettings,
)

REPO = Path(__file__).resolve().parents[3]

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
_seq = itertools.count()


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f'{name} is not set: eval "$(scripts/services start es)"')
    return value


@pytest.fixture(scope="session")
def es_url() -> str:
    return _env("WAFERMON_TEST_ES_URL")


@pytest.fixture(scope="session")
def es_config(es_url: str) -> dict[str, Any]:
    """Connection settings as a site config writes them: HTTPS, the test CA, basic auth."""
    return {
        "hosts": [es_url],
        "username": _env("WAFERMON_TEST_ES_USER"),
        "password": _env("WAFERMON_TEST_ES_PASSWORD"),
        "ca_certs": _env("WAFERMON_TEST_ES_CA"),
    }


@pytest.fixture(scope="session")
def es_conn(es_config: dict[str, Any]) -> dict[str, Any]:
    """The same as keyword arguments of the Settings classes."""
    return {
        **es_config,
        "password": Secret(es_config["password"]),
        "ca_certs": Path(es_config["ca_certs"]),
    }


@pytest.fixture
async def es(es_config: dict[str, Any]):
    client = AsyncElasticsearch(
        es_config["hosts"],
        basic_auth=(es_config["username"], es_config["password"]),
        ca_certs=es_config["ca_certs"],
    )
    yield client
    await client.close()


@pytest.fixture
async def prefix(es: AsyncElasticsearch):
    name = f"wm-test-{uuid.uuid4().hex[:10]}"
    yield name
    await es.indices.delete(index=f"{name}-*", ignore_unavailable=True)
    await es.options(ignore_status=404).indices.delete_index_template(name=name)


@pytest.fixture
async def zabbix_host():
    """A fresh Zabbix host name ``wafermon-<site>`` for the round trip; deleted afterwards."""
    from wafermon import Secret
    from wafermon_backend_zabbix import ApiSettings, ZabbixApi

    host = f"wafermon-rt{uuid.uuid4().hex[:10]}"
    yield host
    api = ZabbixApi(
        ApiSettings(
            url=os.environ["WAFERMON_TEST_ZABBIX_API_URL"],
            user=os.environ["WAFERMON_TEST_ZABBIX_USER"],
            password=Secret(os.environ["WAFERMON_TEST_ZABBIX_PASSWORD"]),
        )
    )
    try:
        found = await api.call("host.get", filter={"host": [host]}, output=["hostid"])
        if found:
            await api.call("host.delete", *[h["hostid"] for h in found])
    finally:
        await api.close()


@pytest.fixture
def emitter_settings(es_conn: dict[str, Any], prefix: str):
    def make(**overrides: Any) -> EmitterSettings:
        return EmitterSettings(**{**es_conn, "index_prefix": prefix, "replicas": 0, **overrides})

    return make


@pytest.fixture
async def make_emitter(emitter_settings):
    """``await make_emitter(start=True, **setting_overrides)``: emitters closed after the test."""
    made: list[ElasticsearchEmitter] = []

    async def make(*, start: bool = True, **overrides: Any) -> ElasticsearchEmitter:
        em = ElasticsearchEmitter(f"es{len(made)}", emitter_settings(**overrides))
        made.append(em)
        if start:
            await em.start()
        return em

    yield make
    for em in made:
        await em.close()


@pytest.fixture
async def emitter(make_emitter):
    return await make_emitter()


@pytest.fixture
async def adapter(es_conn: dict[str, Any], prefix: str):
    ad = ElasticsearchQueryAdapter("es", AdapterSettings(**es_conn, index_prefix=prefix))
    yield ad
    await ad.close()


def make_event(
    *,
    time: datetime | None = None,
    site_id: str = "fab1",
    app: str = "etch",
    kind: str = "started",
    entity_type: str = "job",
    entity_id: str | None = None,
    business_key: str | None = None,
    sub_key: str | None = None,
    **overrides: Any,
) -> Event:
    """A full event (every optional part filled); successive events are 1.000001 s apart."""
    n = next(_seq)
    return Event(
        event_id=uuid.uuid4(),
        kind=kind,
        time=time or T0 + timedelta(seconds=n, microseconds=n),
        site_id=site_id,
        app=App(name=app, version="1.2.3"),
        entity=Entity(
            type=entity_type,
            id=entity_id or f"j{n}",
            parent_id="j0" if entity_type == "subjob" else None,
            business_key=business_key,
            sub_key=sub_key,
        ),
        metrics=Metrics(duration_s=1.5, cpu_user_s=1.25, mem_max_mb=300.0, progress=0.5),
        error=ErrorInfo(type="Boom", message="it broke", stack="line 1")
        if kind == "failed"
        else None,
        source=Source(host="node-1", pid=42, sdk="python", sdk_version="0.1.0"),
        **{"metadata": {"tool": "etch-07", "lot": {"id": "L1", "wafers": 25}}, **overrides},
    )


async def stored_ids(es: AsyncElasticsearch, prefix: str) -> list[str]:
    """Every document id under ``prefix`` (refreshed first), duplicates included."""
    await es.indices.refresh(index=f"{prefix}-*")
    answer = await es.search(
        index=f"{prefix}-*", size=10_000, source=False, query={"match_all": {}}
    )
    return [hit["_id"] for hit in answer["hits"]["hits"]]
