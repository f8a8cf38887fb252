"""The wafermon.testing contract suites, run against the CloudWatch emitter and adapter.

AWS cannot run here: moto's server stands in (a real HTTP server; aiobotocore signs and sends
real requests), with a log group prefix and namespace unique to each test. "Down" is an
endpoint on a port nobody listens on. CloudWatch Logs keeps a retried event twice (no
idempotency key), so the emitter suite checks nothing is lost and the adapter suite that
reads return each event once.
"""

from __future__ import annotations

import orjson
import pytest
import wafermon_backend_cloudwatch.plugin
from aiobotocore.session import get_session
from wafermon_backend_cloudwatch.emitter import CloudWatchEmitter, CloudWatchSettings

from wafermon import Event
from wafermon.testing import EmitterContract, QueryAdapterContract, free_port


@pytest.fixture
def down_aws(aws):
    return {
        **aws,
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
        "max_attempts": 1,
        "timeout": "2s",
    }


def logs_client(aws: dict):
    return get_session().create_client(
        "logs",
        endpoint_url=aws["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class TestCloudWatchEmitterContract(EmitterContract):
    plugin = wafermon_backend_cloudwatch.plugin
    type_name = "cloudwatch"
    idempotent = False

    @pytest.fixture
    def config(self, aws):
        return aws

    @pytest.fixture
    def down_config(self, down_aws):
        return down_aws

    @pytest.fixture
    def stored_ids(self, aws):
        async def read() -> list[str]:
            found: list[str] = []
            async with logs_client(aws) as logs:
                pages = logs.get_paginator("filter_log_events").paginate(
                    logGroupName=aws["log_group"].format(site_id="fab1")
                )
                async for page in pages:
                    found += [orjson.loads(e["message"])["event_id"] for e in page["events"]]
            return found

        return read


class TestCloudWatchAdapterContract(QueryAdapterContract):
    plugin = wafermon_backend_cloudwatch.plugin
    type_name = "cloudwatch"

    @pytest.fixture
    def config(self, aws):
        return {k: v for k, v in aws.items() if k != "namespace"}

    @pytest.fixture
    def down_config(self, down_aws):
        return {k: v for k, v in down_aws.items() if k != "namespace"}

    @pytest.fixture
    async def seed(self, aws):
        from wafermon import Secret

        secrets = {k: Secret(aws[k]) for k in ("access_key_id", "secret_access_key")}
        emitter = CloudWatchEmitter("aws", CloudWatchSettings(**{**aws, **secrets}, metrics=False))
        await emitter.start()

        async def write(events: list[Event]) -> None:
            await emitter.emit(events)

        yield write
        await emitter.close()
