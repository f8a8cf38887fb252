"""The wafermon.testing contract suites, run against the Elasticsearch emitter and adapter on
the real node (scripts/services), each test under its own index prefix.

The emitter claims idempotency (``_id`` = ``event_id`` with ``create``), so the suite checks
each event is stored once however often it is sent. "Down" is a host on a port nobody
listens on.
"""

from __future__ import annotations

import pytest
from conftest import stored_ids as es_stored_ids

import wafermon_backend_elasticsearch.plugin
from wafermon import Event
from wafermon.testing import EmitterContract, QueryAdapterContract, free_port


class ElasticsearchBackend:
    """The node both suites use, under this test's index prefix; down, a closed port."""

    plugin = wafermon_backend_elasticsearch.plugin
    type_name = "elasticsearch"

    @pytest.fixture
    def config(self, es_config, prefix):
        return {**es_config, "index_prefix": prefix}

    @pytest.fixture
    def down_config(self, es_config, prefix):
        return {
            **es_config,
            "hosts": [f"https://127.0.0.1:{free_port()}"],
            "index_prefix": prefix,
            "request_timeout": "2s",
        }


class TestElasticsearchEmitterContract(ElasticsearchBackend, EmitterContract):
    idempotent = True

    @pytest.fixture
    def config(self, es_config, prefix):
        return {**es_config, "index_prefix": prefix, "replicas": 0}

    @pytest.fixture
    def stored_ids(self, es, prefix):
        async def read() -> list[str]:
            return await es_stored_ids(es, prefix)

        return read


class TestElasticsearchAdapterContract(ElasticsearchBackend, QueryAdapterContract):
    @pytest.fixture
    async def seed(self, make_emitter, es, prefix):
        emitter = await make_emitter()

        async def write(events: list[Event]) -> None:
            await emitter.emit(events)
            await es.indices.refresh(index=f"{prefix}-*")

        return write
