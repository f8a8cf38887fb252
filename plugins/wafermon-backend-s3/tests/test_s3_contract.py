"""The wafermon.testing contract suites, run against the S3 emitter and adapter on the real
SeaweedFS (a fresh bucket per test); "down" is an endpoint on a port nobody listens on.

A retried identical batch lands on the same object key (the key holds the batch's digest), but
an overlapping batch is a new object: the emitter is at-least-once and readers deduplicate, so
the emitter suite checks nothing is lost and the adapter suite that reads return each event
once.
"""

from __future__ import annotations

import gzip

import orjson
import pytest

import wafermon_backend_s3.plugin
from wafermon import Event
from wafermon.testing import EmitterContract, QueryAdapterContract, free_port
from wafermon_backend_s3.emitter import EmitterSettings, S3Emitter


class S3Backend:
    """The backend both suites use: a fresh bucket on SeaweedFS; down, a closed port."""

    plugin = wafermon_backend_s3.plugin
    type_name = "s3"

    @pytest.fixture
    def config(self, s3_config, bucket_name):
        return {**s3_config, "bucket": bucket_name}

    @pytest.fixture
    def down_config(self, s3_config):
        return {
            **s3_config,
            "bucket": "nothing-here",
            "endpoint_url": f"http://127.0.0.1:{free_port()}",
            "max_attempts": 1,
            "connect_timeout": "1s",
            "read_timeout": "2s",
        }

    @pytest.fixture
    def secret_values(self, s3_config):
        return [s3_config["secret_access_key"]]


class TestS3EmitterContract(S3Backend, EmitterContract):
    idempotent = False

    @pytest.fixture
    def stored_ids(self, bucket):
        async def read() -> list[str]:
            found = []
            for obj in await bucket.list_objects(""):
                if obj.key.endswith(".jsonl.gz"):
                    lines = gzip.decompress(await bucket.get(obj.key)).splitlines()
                    found.extend(orjson.loads(line)["event_id"] for line in lines)
            return found

        return read


class TestS3AdapterContract(S3Backend, QueryAdapterContract):
    @pytest.fixture
    async def seed(self, settings):
        emitter = S3Emitter("s3", settings(EmitterSettings))
        await emitter.start()

        async def write(events: list[Event]) -> None:
            await emitter.emit(events)

        yield write
        await emitter.close()
