"""The emitter against a real Elasticsearch node: template, idempotent bulk, per-item results.

The 429 items come from ES itself: an index with the ``read_only_allow_delete`` block (what ES
sets at the disk flood stage) answers 429 for each document sent to it, and others succeed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from conftest import T0, make_event, stored_ids

from wafermon import PermanentError, RetryableError, Secret, encode_event
from wafermon_backend_elasticsearch import index_for


def deep_metadata(levels: int) -> dict:
    root: dict = {}
    node = root
    for _ in range(levels):
        node["k"] = {}
        node = node["k"]
    return root


async def test_start_installs_the_template_and_documents_follow_its_mapping(es, emitter, prefix):
    await emitter.emit([make_event()])
    mapping = await es.indices.get_mapping(index=index_for(prefix, T0.date()))
    props = next(iter(mapping.body.values()))["mappings"]["properties"]
    assert props["time"]["type"] == "date_nanos"
    assert props["event_id"]["type"] == "keyword"
    assert props["metadata"]["type"] == "flattened"
    assert props["metrics"]["properties"]["duration_s"]["type"] == "double"
    settings = await es.indices.get_settings(index=index_for(prefix, T0.date()))
    assert next(iter(settings.body.values()))["settings"]["index"]["number_of_replicas"] == "0"


async def test_each_event_goes_to_the_index_of_its_day_with_event_id_as_id(es, emitter, prefix):
    days = [T0, T0 + timedelta(days=1), T0 + timedelta(days=3)]
    events = [make_event(time=day) for day in days]
    await emitter.emit(events)
    await es.indices.refresh(index=f"{prefix}-*")
    for event, day in zip(events, days, strict=True):
        doc = await es.get(index=index_for(prefix, day.date()), id=str(event.event_id))
        assert doc["_source"]["time"] == day.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert doc["_source"]["metadata"] == event.metadata


async def test_a_mapping_error_dead_letters_that_event_and_stores_the_rest(es, emitter, prefix):
    good = [make_event() for _ in range(9)]
    bad = make_event(metadata=deep_metadata(25))  # deeper than the flattened depth limit (20)
    with pytest.raises(PermanentError) as caught:
        await emitter.emit([*good[:4], bad, *good[4:]])
    assert caught.value.event_ids == [str(bad.event_id)]
    assert "depth limit" in str(caught.value)
    assert "document_parsing_exception" in str(caught.value)
    assert sorted(await stored_ids(es, prefix)) == sorted(str(e.event_id) for e in good)
    # Sent again (the router would not, but a restarted one might): same verdict, nothing sent.
    requests = emitter.stats()["bulk_requests"]
    with pytest.raises(PermanentError):
        await emitter.emit([bad, *good])
    assert emitter.stats()["bulk_requests"] == requests


async def test_a_resent_batch_creates_no_duplicates(es, emitter, make_emitter, prefix):
    events = [make_event() for _ in range(50)]
    await emitter.emit(events)
    await emitter.emit(events)  # the same emitter remembers: nothing is sent again
    assert emitter.stats()["stored"] == 50
    # A new process (no memory) sends them again: ES answers 409 and nothing is doubled.
    other = await make_emitter()
    await other.emit([*events[:30], make_event()])
    assert other.stats()["duplicates"] == 30
    assert other.stats()["stored"] == 1
    ids = await stored_ids(es, prefix)
    assert len(ids) == len(set(ids)) == 51


async def _block(es, index: str, blocked: bool) -> None:
    await es.indices.put_settings(
        index=index, settings={"index.blocks.read_only_allow_delete": blocked or None}
    )


async def test_429_items_are_retried_alone_and_successes_never_resent(es, emitter, prefix):
    blocked_day, open_day = T0, T0 + timedelta(days=1)
    await emitter.emit([make_event(time=blocked_day)])  # creates the index to block
    await _block(es, index_for(prefix, blocked_day.date()), True)
    to_blocked = [make_event(time=blocked_day + timedelta(seconds=i)) for i in range(5)]
    to_open = [make_event(time=open_day + timedelta(seconds=i)) for i in range(7)]

    async def unblock_soon() -> None:
        await asyncio.sleep(0.5)  # within the emitter's own item retries (0.2+0.4+0.8 s)
        await _block(es, index_for(prefix, blocked_day.date()), False)

    unblocking = asyncio.create_task(unblock_soon())
    await emitter.emit(to_blocked + to_open)
    await unblocking
    stats = emitter.stats()
    assert stats["item_retries"] >= 5
    assert stats["stored"] == 1 + 5 + 7
    assert stats["duplicates"] == 0  # a re-sent success would have come back as 409
    ids = await stored_ids(es, prefix)
    assert len(ids) == len(set(ids)) == 13


async def test_items_still_refused_after_the_tries_make_emit_retryable(es, make_emitter, prefix):
    emitter = await make_emitter(item_attempts=2, item_backoff=0.05)
    await emitter.emit([make_event(time=T0)])
    await _block(es, index_for(prefix, T0.date()), True)
    stuck = [make_event(time=T0 + timedelta(seconds=i)) for i in range(3)]
    fine = [make_event(time=T0 + timedelta(days=2)) for _ in range(4)]
    with pytest.raises(RetryableError, match=r"did not take 3 of 7 events.*429"):
        await emitter.emit(stuck + fine)
    await _block(es, index_for(prefix, T0.date()), False)
    before = emitter.stats()["bulk_requests"]
    await emitter.emit(stuck + fine)  # the router's retry: only the 3 are sent
    assert emitter.stats()["bulk_requests"] == before + 1
    assert emitter.stats()["duplicates"] == 0
    assert len(await stored_ids(es, prefix)) == 8


async def test_an_unreachable_cluster_is_retryable(make_emitter):
    emitter = await make_emitter(start=False, hosts=["https://127.0.0.1:9"], request_timeout=2)
    with pytest.raises(RetryableError, match="index template"):
        await emitter.start()
    with pytest.raises(RetryableError, match="bulk request failed"):
        await emitter.emit([make_event()])
    assert not (await emitter.health()).ok


async def test_big_batches_are_split_by_bytes(es, make_emitter, prefix):
    emitter = await make_emitter(max_bulk_bytes=4096)
    events = [make_event() for _ in range(40)]
    per_event = len(encode_event(events[0])) + 90  # the document and its action line
    await emitter.emit(events)
    assert emitter.stats()["bulk_requests"] >= 40 * per_event // 4096
    assert len(await stored_ids(es, prefix)) == 40


async def test_retention_deletes_whole_old_indices_only(es, make_emitter, prefix):
    emitter = await make_emitter(retention_days=7)
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    ages = [0, 3, 7, 8, 30]
    await emitter.emit([make_event(time=now - timedelta(days=age)) for age in ages])
    await es.indices.create(index=f"{prefix}-not-a-day", settings={"number_of_replicas": 0})
    deleted = await emitter.apply_retention(now)
    assert deleted == [index_for(prefix, (now - timedelta(days=a)).date()) for a in (30, 8)]
    left = await es.cat.indices(index=f"{prefix}-*", h="index", format="json")
    kept = sorted(row["index"] for row in left.body)
    assert kept == sorted(
        [index_for(prefix, (now - timedelta(days=a)).date()) for a in (0, 3, 7)]
        + [f"{prefix}-not-a-day"]
    )


async def test_a_wrong_password_is_retryable_and_named(make_emitter):
    emitter = await make_emitter(start=False, password=Secret("not-the-password"))
    with pytest.raises(RetryableError, match="401") as caught:
        await emitter.start()
    assert "not-the-password" not in str(caught.value)
    with pytest.raises(RetryableError, match="401"):
        await emitter.emit([make_event()])
    assert not (await emitter.health()).ok


async def test_without_the_test_ca_the_certificate_is_refused(make_emitter):
    emitter = await make_emitter(start=False, ca_certs=None, request_timeout=5)
    with pytest.raises(
        RetryableError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"
    ):
        await emitter.start()
