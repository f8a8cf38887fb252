"""The S3 emitter against the real SeaweedFS: layout, both formats, retries, multipart, linger."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
from botocore.exceptions import EndpointConnectionError
from conftest import NOW, spread

from wafermon import EventBatch, Query, RetryableError, encode_ndjson
from wafermon_backend_s3.adapter import AdapterSettings, S3QueryAdapter
from wafermon_backend_s3.emitter import EmitterSettings, S3Emitter


async def read_all(adapter: S3QueryAdapter, query: Query | None = None, limit: int = 10_000):
    """Every event the adapter returns, following cursors; also the pages' sizes."""
    query = query or Query(limit=limit)
    events, pages = [], []
    while True:
        result = await adapter.query(query)
        events += result.events
        pages.append(len(result.events))
        if result.next_cursor is None:
            return events, pages
        query = Query(**{**_fields(query), "cursor": result.next_cursor})


def _fields(query: Query) -> dict:
    import attrs

    return attrs.asdict(query, recurse=False)


@pytest.fixture
async def started(settings):
    """``await started(cls, settings_cls, **overrides)``: a started component, closed after."""
    components = []

    async def make(cls, settings_cls, **overrides):
        component = cls("s3", settings(settings_cls, **overrides))
        await component.start()
        components.append(component)
        return component

    yield make
    for component in components:
        await component.close()


class FailPuts:
    """Makes the real client fail requests of one operation for matching keys (every retry
    too), as a dropped connection would: registered on botocore's before-send event."""

    def __init__(self, client, operation: str, match) -> None:
        self.match, self.failed = match, 0
        client.meta.events.register(f"before-send.s3.{operation}", self)

    def __call__(self, request, **_kwargs):
        if self.match(request.url):
            self.failed += 1
            raise EndpointConnectionError(endpoint_url=request.url)
        return None


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
async def test_objects_are_partitioned_and_read_back_in_order(started, bucket, fmt):
    emitter = await started(S3Emitter, EmitterSettings, format=fmt)
    written = spread(NOW - timedelta(hours=5), 300, timedelta(seconds=61))
    written += spread(NOW - timedelta(hours=3), 50, timedelta(seconds=7), site_id="fab2")
    await emitter.emit(written)
    keys = sorted(o.key for o in await bucket.list_objects("wafermon/"))
    hours = {(e.site_id, e.time.strftime("%Y-%m-%d/hour=%H")) for e in written}
    assert len(keys) == len(hours)  # one object per (site, hour) partition
    for key in keys:
        assert key.startswith("wafermon/site=fab")
        assert "/date=" in key
        assert "/hour=" in key
        assert key.endswith(".jsonl.gz" if fmt == "jsonl" else ".parquet")

    adapter = await started(S3QueryAdapter, AdapterSettings)
    got, pages = await read_all(adapter, Query(limit=97))
    assert [e.event_id for e in got] == [
        e.event_id for e in sorted(written, key=lambda e: e.sort_key)
    ]
    assert got == sorted(written, key=lambda e: e.sort_key)  # every field survives the trip
    assert max(pages) == 97
    assert len(pages) == 4


async def test_a_failure_mid_batch_then_a_retry_leaves_no_duplicate_objects(started, bucket):
    emitter = await started(S3Emitter, EmitterSettings, max_object_events=40)
    batch = spread(NOW - timedelta(hours=4), 200, timedelta(seconds=50))  # 72 + 72 + 56 an hour
    expected = 2 + 2 + 2  # objects of at most 40 events per hour
    failing = FailPuts(emitter.bucket.client, "PutObject", lambda url: "hour=" in url)
    # Let two objects through, then the connection "drops" for the rest of the batch.
    allowed = iter(range(2))
    failing.match = lambda url: next(allowed, None) is None
    with pytest.raises(RetryableError):
        await emitter.emit(batch)
    assert failing.failed > 0
    stored_before = {o.key for o in await bucket.list_objects("wafermon/")}
    assert 0 < len(stored_before) < expected

    failing.match = lambda url: False
    await emitter.emit(batch)  # the router's retry: the same batch again
    await emitter.emit(batch)  # and once more, as at-least-once delivery may
    keys = {o.key for o in await bucket.list_objects("wafermon/")}
    assert len(keys) == expected
    assert stored_before <= keys

    adapter = await started(S3QueryAdapter, AdapterSettings)
    got, _ = await read_all(adapter)
    assert sorted(e.event_id for e in got) == sorted(e.event_id for e in batch)


async def test_large_objects_go_up_in_parts_and_a_failed_part_is_retried_whole(
    started, bucket, make_event
):
    emitter = await started(
        S3Emitter, EmitterSettings, multipart_threshold=2**20, part_size=5 * 2**20
    )
    start = NOW - timedelta(hours=2)
    batch = [  # random metadata barely compresses: the object needs two 5 MiB parts
        make_event(
            time=start + timedelta(milliseconds=500 * i), metadata={"n": os.urandom(1500).hex()}
        )
        for i in range(4000)
    ]
    failing = FailPuts(emitter.bucket.client, "UploadPart", lambda url: "partNumber=2" in url)
    with pytest.raises(RetryableError, match="upload part 2"):
        await emitter.emit(batch)
    uploads = await emitter.bucket.client.list_multipart_uploads(Bucket=emitter.settings.bucket)
    assert not uploads.get("Uploads")  # the failed upload was aborted, no parts left behind

    failing.match = lambda url: False
    await emitter.emit(batch)
    objects = await bucket.list_objects("wafermon/")
    assert len(objects) == 1
    assert objects[0].size > 5 * 2**20
    adapter = await started(S3QueryAdapter, AdapterSettings)
    got, _ = await read_all(adapter)
    assert len(got) == 4000
    assert {e.event_id for e in got} == {e.event_id for e in batch}


async def test_linger_lets_concurrent_emits_share_objects(started, bucket):
    emitter = await started(S3Emitter, EmitterSettings, linger=0.3)
    start = NOW - timedelta(hours=1, minutes=30)
    batches = [spread(start + timedelta(seconds=i), 10, timedelta(seconds=20)) for i in range(8)]
    await asyncio.gather(*(emitter.emit(b) for b in batches))  # each returns once stored
    assert len(await bucket.list_objects("wafermon/")) == 1
    adapter = await started(S3QueryAdapter, AdapterSettings)
    got, _ = await read_all(adapter)
    assert len(got) == 80


async def test_health_names_a_missing_bucket(started, settings):
    emitter = await started(S3Emitter, EmitterSettings, bucket="wm-test-no-such-bucket")
    health = await emitter.health()
    assert not health.ok
    assert "404" in health.detail or "NoSuch" in health.detail


async def test_a_batch_of_wire_bytes_is_stored_as_received_under_the_same_keys(started, bucket):
    emitter = await started(S3Emitter, EmitterSettings)
    events = spread(NOW - timedelta(hours=6), 120, timedelta(minutes=2))
    as_bytes = EventBatch.from_ndjson(encode_ndjson(events))
    await emitter.emit(as_bytes)
    assert not as_bytes.decoded  # no Event was built to store it
    keys = sorted(o.key for o in await bucket.list_objects("wafermon/"))
    await emitter.emit(events)  # the same events as objects: the very same keys
    assert sorted(o.key for o in await bucket.list_objects("wafermon/")) == keys
    adapter = await started(S3QueryAdapter, AdapterSettings)
    got, _ = await read_all(adapter)
    assert got == events
