"""Fixtures: moto_server (started by scripts/services, never by the tests) and events.

AWS itself cannot run here, so moto's server stands in for CloudWatch Logs, CloudWatch and
X-Ray (a real HTTP server; aiobotocore signs and sends real requests). It enforces few of
AWS's limits and ignores JSON filter patterns, so the tests check those limits and the
adapter's own filtering directly rather than trusting moto to refuse. Each test uses its own
log group prefix and metric namespace instead of resetting moto, so runs can share it.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from wafermon import App, Entity, ErrorInfo, Event, Metrics

# No credential lookups, no instance-metadata probe (off-box traffic): set before any client.
os.environ.update(
    AWS_EC2_METADATA_DISABLED="true",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    endpoint = os.environ.get("WAFERMON_TEST_MOTO_ENDPOINT")
    if not endpoint:
        pytest.fail(
            "WAFERMON_TEST_MOTO_ENDPOINT is not set: start moto with "
            '`eval "$(scripts/services start moto)"` (scripts/test does this)'
        )
    return endpoint


@pytest.fixture
def aws(moto_endpoint):
    """Connection settings for moto plus names unique to this test."""
    tag = uuid.uuid4().hex[:10]
    return {
        "endpoint_url": moto_endpoint,
        "region": "us-east-1",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "log_group": f"/wafermon-test-{tag}/{{site_id}}",
        "namespace": f"WafermonTest{tag}",
    }


@pytest.fixture
def make_event():
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    counter = iter(range(1_000_000))

    def make(
        kind: str = "started",
        *,
        site_id: str = "fab1",
        app: str = "etch",
        entity_id: str | None = None,
        parent_id: str | None = None,
        time: datetime | None = None,
        duration_s: float | None = None,
        **entity: str,
    ) -> Event:
        i = next(counter)
        return Event(
            event_id=uuid.uuid4(),
            kind=kind,
            time=time or base + timedelta(seconds=i),
            site_id=site_id,
            app=App(name=app),
            entity=Entity(
                type="subjob" if parent_id else "job",
                id=entity_id or f"job-{i}",
                parent_id=parent_id,
                **entity,
            ),
            metrics=Metrics(duration_s=duration_s),
            error=ErrorInfo(type="ChamberFault", message="pressure drop")
            if kind == "failed"
            else None,
        )

    return make
