"""Elasticsearch and Zabbix backends (issue 15). Run through bench/run.py.

- ES: events/s that ``ElasticsearchEmitter.emit`` indexes (batches of 1000 events as the
  sidecar's router hands them over: an EventBatch of the spooled NDJSON bytes, one ``_bulk`` per
  5 MiB, per-item results checked), as a ratio to the client's own ``helpers.async_bulk``
  indexing the same documents (prepared dicts, its default chunks of 500) into a fresh index
  prefix, same run.
- Zabbix: values/s that ``ZabbixEmitter.emit`` gets accepted (5 values per event: status,
  duration, CPU, memory, the event text), as a ratio to zabbix-utils' bare ``AsyncSender``
  sending the same values (prepared ItemValues, same chunk size) to the same items.

Each figure is the median of the rounds. Needs WAFERMON_TEST_ES_* and WAFERMON_TEST_ZABBIX_*
(``scripts/services start es zabbix``; ES over HTTPS with basic auth, for both sides); the
Zabbix part provisions a host of its own and deletes it at the end.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk
from run import sample_events
from zabbix_utils import AsyncSender, ItemValue

from wafermon import EventBatch, RetryableError, Secret, encode_ndjson, to_json_dict
from wafermon.events import Event
from wafermon_backend_elasticsearch import ElasticsearchEmitter, EmitterSettings, index_for
from wafermon_backend_zabbix import ApiSettings, ZabbixApi, ZabbixEmitter
from wafermon_backend_zabbix import EmitterSettings as ZabbixSettings
from wafermon_backend_zabbix.keys import clock_ns, host_name, values

BATCH = 1000


def fresh(events: list[Event], site_id: str | None = None) -> list[Event]:
    """The same events with new ids and times from now on (1 ms apart): nothing is a repeat."""
    import attrs

    start = datetime.now(UTC) - timedelta(hours=1)
    return [
        attrs.evolve(
            e,
            event_id=uuid.uuid4(),
            time=start + timedelta(milliseconds=i),
            site_id=site_id or e.site_id,
        )
        for i, e in enumerate(events)
    ]


# -- Elasticsearch ------------------------------------------------------------------------------


async def _es(count: int, rounds: int) -> dict[str, object]:
    url, user = os.environ["WAFERMON_TEST_ES_URL"], os.environ["WAFERMON_TEST_ES_USER"]
    password, ca = os.environ["WAFERMON_TEST_ES_PASSWORD"], os.environ["WAFERMON_TEST_ES_CA"]
    client = AsyncElasticsearch(url, basic_auth=(user, password), ca_certs=ca)
    conn = {"hosts": [url], "username": user, "password": Secret(password), "ca_certs": Path(ca)}
    template = sample_events(count)
    ours, theirs, prefixes = [], [], []
    try:
        for _ in range(rounds):
            prefix = f"bench-{uuid.uuid4().hex[:8]}"
            prefixes.append(prefix)
            emitter = ElasticsearchEmitter(
                "bench", EmitterSettings(**conn, index_prefix=prefix, replicas=0)
            )
            await emitter.start()
            events = fresh(template)
            batches = [
                EventBatch.from_ndjson(encode_ndjson(events[start : start + BATCH]))
                for start in range(0, count, BATCH)
            ]
            began = time.perf_counter()
            for batch in batches:
                await emitter.emit(batch)
            ours.append(count / (time.perf_counter() - began))
            await emitter.close()

            # Baseline: same documents, same template (the emitter installed it), async_bulk.
            base_prefix = prefix + "-base"
            await client.indices.put_index_template(
                name=base_prefix,
                index_patterns=[f"{base_prefix}-*"],
                template=(await client.indices.get_index_template(name=prefix))["index_templates"][
                    0
                ]["index_template"]["template"],
                priority=300,
            )
            prefixes.append(base_prefix)
            docs = [
                {
                    "_op_type": "create",
                    "_index": index_for(base_prefix, e.time.date()),
                    "_id": str(e.event_id),
                    "_source": to_json_dict(e),
                }
                for e in fresh(template)
            ]
            began = time.perf_counter()
            ok, errors = await async_bulk(client, docs, raise_on_error=False)
            theirs.append(count / (time.perf_counter() - began))
            assert not errors, errors[:3]
            assert ok == count
        days = f"{prefixes[0]}-2*"  # the emitter's daily indices, not the baseline's
        await client.indices.refresh(index=days)
        stored = (await client.count(index=days))["count"]
        assert stored == count, f"{stored} of {count} events in ES"
    finally:
        for prefix in prefixes:
            await client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
            await client.options(ignore_status=404).indices.delete_index_template(name=prefix)
        await client.close()
    ours_rate, base_rate = statistics.median(ours), statistics.median(theirs)
    return {
        "events": count,
        "rounds": rounds,
        "emitter_events_per_s": round(ours_rate),
        "async_bulk_events_per_s": round(base_rate),
        "ratio_to_async_bulk": round(ours_rate / base_rate, 3),
    }


# -- Zabbix -------------------------------------------------------------------------------------


def _reload_cache() -> None:
    conf = os.environ["WAFERMON_TEST_ZABBIX_SERVER_CONF"]
    subprocess.run(
        ["zabbix_server", "-c", conf, "-R", "config_cache_reload"], check=True, capture_output=True
    )


async def _zabbix(count: int, rounds: int) -> dict[str, object]:
    host_port = os.environ["WAFERMON_TEST_ZABBIX_TRAPPER"].rsplit(":", 1)
    server, port = host_port[0], int(host_port[1])
    api_settings = ApiSettings(
        url=os.environ["WAFERMON_TEST_ZABBIX_API_URL"],
        user=os.environ["WAFERMON_TEST_ZABBIX_USER"],
        password=Secret(os.environ["WAFERMON_TEST_ZABBIX_PASSWORD"]),
    )
    site = f"bench{uuid.uuid4().hex[:8]}"
    settings = ZabbixSettings(server=server, port=port, provision=True, api=api_settings)
    template = sample_events(count)
    emitter = ZabbixEmitter("bench", settings)
    api = ZabbixApi(api_settings)
    ours, theirs = [], []
    try:
        await emitter.start()
        # Provision the host, then wait until the discovered items take values.
        warmup = fresh(template[:1], site)
        deadline = time.monotonic() + 90
        while True:
            try:
                await emitter.emit(warmup)
                break
            except RetryableError:
                assert time.monotonic() < deadline, "Zabbix items not ready in 90 s"
                await asyncio.to_thread(_reload_cache)
                await asyncio.sleep(0.5)
        sender = AsyncSender(server=server, port=port, chunk_size=settings.chunk_size)
        host = host_name(settings.host_prefix, site)
        per_event = len(values(warmup[0], host, with_event=True))
        for _ in range(rounds):
            events = fresh(template, site)
            before = emitter.stats()["values_sent"]
            began = time.perf_counter()
            for start in range(0, count, BATCH):
                await emitter.emit(events[start : start + BATCH])
            ours.append(count * per_event / (time.perf_counter() - began))
            assert emitter.stats()["values_sent"] - before == count * per_event

            items = []
            for event in fresh(template, site):
                clock, ns = clock_ns(event)
                items.extend(
                    ItemValue(host, k, v, clock, ns)
                    for k, v in values(event, host, with_event=True)
                )
            began = time.perf_counter()
            answer = await sender.send(items)
            theirs.append(len(items) / (time.perf_counter() - began))
            assert answer.failed == 0, answer
            assert answer.processed == len(items), answer
    finally:
        await emitter.close()
        found = await api.call("host.get", filter={"host": [host_name("wafermon-", site)]})
        if found:
            await api.call("host.delete", *[h["hostid"] for h in found])
        await api.close()
    ours_rate, base_rate = statistics.median(ours), statistics.median(theirs)
    return {
        "events": count,
        "values_per_event": per_event,
        "rounds": rounds,
        "emitter_values_per_s": round(ours_rate),
        "bare_sender_values_per_s": round(base_rate),
        "ratio_to_bare_sender": round(ours_rate / base_rate, 3),
    }


def run(quick: bool) -> dict[str, object]:
    rounds = 1 if quick else 3
    return {
        "es_bulk": asyncio.run(_es(5_000 if quick else 20_000, rounds)),
        "zabbix_sender": asyncio.run(_zabbix(2_000 if quick else 10_000, rounds)),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
