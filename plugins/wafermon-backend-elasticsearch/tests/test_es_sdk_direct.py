"""The Python SDK's direct mode builds the ``elasticsearch`` backend from a site config, as
the sidecar does, and a monitored job's events land in ES (through the SDK's own shipper)."""

from __future__ import annotations

import asyncio

from conftest import stored_ids

from wafermon import Query
from wafermon.testing import write_yaml
from wafermon_backend_elasticsearch import AdapterSettings, ElasticsearchQueryAdapter
from wafermon_sdk import AppRef, Client, Monitored


async def test_direct_mode_sends_a_monitored_job_to_elasticsearch(
    tmp_path, es, es_config, es_conn, prefix
):
    site = write_yaml(
        tmp_path / "site.yaml",
        {
            "site_id": "fab1",
            "backends": [
                {
                    "name": "elk",
                    "type": "elasticsearch",
                    "config": {**es_config, "index_prefix": prefix, "replicas": 0},
                }
            ],
        },
    )

    def run() -> tuple[str, dict]:
        client = Client(mode="direct", site_config=str(site), spool_dir=str(tmp_path / "spool"))
        app = AppRef(name="direct-es", version="1.0")
        with Monitored(app=app, business_key="lot-es", client=client) as job:
            for wafer in range(3):
                with Monitored(app=app, entity_type="subjob", sub_key=f"w{wafer}", client=client):
                    pass
        assert client.flush(30), client.stats()
        stats = client.stats()
        client.close(10)
        return job.entity_id, stats

    entity_id, stats = await asyncio.to_thread(run)
    assert stats["sinks"]["direct.elk"]["sent"] == 2 + 3 * 2
    assert len(await stored_ids(es, prefix)) == 8
    adapter = ElasticsearchQueryAdapter("es", AdapterSettings(**es_conn, index_prefix=prefix))
    try:
        job_events = (await adapter.query(Query(entity_id=entity_id))).events
    finally:
        await adapter.close()
    assert [e.kind for e in job_events] == ["started", "finished"]
    assert job_events[0].entity.business_key == "lot-es"
