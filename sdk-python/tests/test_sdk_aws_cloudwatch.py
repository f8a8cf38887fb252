"""The AWS helpers in direct mode: straight to CloudWatch Logs, metrics and X-Ray.

AWS cannot run here: moto_server (started by scripts/services) stands in for it, and the
EC2 instance metadata service is played by aws_stand_in's stand-in. Credentials come from the
AWS_* variables, as the helper requires (the credential chain, never its arguments).
"""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from types import SimpleNamespace

import pytest
from aiobotocore.session import get_session
from aws_stand_in import stand_in
from wafermon_backend_cloudwatch import xray

from wafermon import decode_event
from wafermon_sdk import AppRef, create_aws_emitter, get_aws_metadata, monitored_lambda_handler

APP = AppRef(name="wafer-sorter", version="3")
# Read at import: conftest's autouse fixture clears every WAFERMON_* variable for each test.
MOTO_ENDPOINT = os.environ.get("WAFERMON_TEST_MOTO_ENDPOINT")


@pytest.fixture
def moto(monkeypatch, tmp_path):
    endpoint = MOTO_ENDPOINT
    if not endpoint:
        pytest.fail('WAFERMON_TEST_MOTO_ENDPOINT is not set: eval "$(scripts/services start moto)"')
    for name in (
        "AWS_LAMBDA_FUNCTION_NAME",
        "ECS_CONTAINER_METADATA_URI_V4",
        "WAFERMON_AWS_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("WAFERMON_SPOOL_DIR", str(tmp_path / "spool"))
    tag = uuid.uuid4().hex[:10]
    return {
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "log_group": f"/sdk-test-{tag}/{{site_id}}",
        "namespace": f"SdkTest{tag}",
    }


async def _read(cw: dict, site_id: str) -> tuple[list, list, object]:
    kw = dict(endpoint_url=cw["endpoint_url"], region_name="us-east-1")
    async with get_session().create_client("logs", **kw) as logs:
        found = await logs.filter_log_events(logGroupName=cw["log_group"].format(site_id=site_id))
    async with get_session().create_client("cloudwatch", **kw) as metrics:
        listed = await metrics.list_metrics(Namespace=cw["namespace"])
    events = [decode_event(e["message"]) for e in found["events"]]
    return events, listed["Metrics"], kw


def _dimension_sets(metrics: list) -> set[frozenset]:
    return {frozenset((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in metrics}


def test_lambda_handler_reaches_cloudwatch_and_flushes_before_returning(moto, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "wafer-sorter")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    get_aws_metadata(refresh=True)

    @monitored_lambda_handler("fab1", APP, backend="cloudwatch", cloudwatch=moto)
    def handler(event, context):
        return {"sorted": len(event["wafers"])}

    context = SimpleNamespace(aws_request_id=f"req-{uuid.uuid4().hex[:6]}")
    assert handler({"wafers": [1, 2, 3]}, context) == {"sorted": 3}
    # Read at once, no flush of ours: the decorator flushed before the handler returned.
    events, metrics, kw = asyncio.run(_read(moto, "fab1"))
    assert [(e.kind, e.entity.business_key) for e in events] == [
        ("started", context.aws_request_id),
        ("finished", context.aws_request_id),
    ]
    assert events[1].metadata["aws"]["function_name"] == "wafer-sorter"
    lambda_dims = {("Platform", "lambda"), ("FunctionName", "wafer-sorter"), ("Site", "fab1")}
    assert frozenset(lambda_dims) in _dimension_sets(metrics)

    async def trace():
        async with get_session().create_client("xray", **kw) as x:
            tid = xray.trace_id(events[1], events[1].entity.id)
            return (await x.batch_get_traces(TraceIds=[tid]))["Traces"]

    [found] = asyncio.run(trace())
    docs = [s["Document"] for s in found["Segments"]]
    assert all('"origin":"AWS::Lambda::Function"' in d for d in docs)
    assert any('"end_time"' in d for d in docs)


def test_ec2_job_direct_to_cloudwatch_with_instance_dimensions(moto, monkeypatch):
    with stand_in() as url:
        monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)
        get_aws_metadata(refresh=True)
    monkeypatch.setenv("WAFERMON_AWS_BACKEND", "cloudwatch")
    emitter = create_aws_emitter(site_id="fab2", cloudwatch=dict(moto, region="us-east-1"))
    with emitter.monitored(app=APP, business_key="ec2-job"):
        pass
    assert emitter.flush(30)
    emitter.close()
    get_aws_metadata(refresh=True)
    events, metrics, _ = asyncio.run(_read(moto, "fab2"))
    assert [e.kind for e in events] == ["started", "finished"]
    assert events[0].metadata["aws"]["instance_id"] == "i-0abc1234def567890"
    ec2 = {("Platform", "ec2"), ("InstanceId", "i-0abc1234def567890"), ("Site", "fab2")}
    assert frozenset(ec2) in _dimension_sets(metrics)
    site_config = emitter.settings.site_config
    assert stat.S_IMODE(site_config.stat().st_mode) == 0o600
    assert "aws_secret" not in site_config.read_text()


def test_ecs_task_chosen_by_the_environment_with_cluster_dimensions(moto, monkeypatch):
    with stand_in() as url:
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", f"{url}/v4/container")
        get_aws_metadata(refresh=True)
    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4")
    monkeypatch.setenv("WAFERMON_AWS_BACKEND", "cloudwatch")  # no code change: the env chooses
    emitter = create_aws_emitter(site_id="fab3", cloudwatch=moto)
    with emitter.monitored(app=APP, business_key="ecs-task"):
        pass
    assert emitter.flush(30)
    emitter.close()
    get_aws_metadata(refresh=True)
    events, metrics, _ = asyncio.run(_read(moto, "fab3"))
    assert [e.kind for e in events] == ["started", "finished"]
    ecs = {
        ("Platform", "ecs"),
        ("ClusterName", "fab1-cluster"),
        ("TaskFamily", "wafer-worker"),
        ("Site", "fab3"),
    }
    assert frozenset(ecs) in _dimension_sets(metrics)


def test_the_helper_refuses_keys_and_unknown_backends(moto):
    with pytest.raises(ValueError, match="secret_access_key not accepted"):
        create_aws_emitter(backend="cloudwatch", cloudwatch={"secret_access_key": "x"})
    with pytest.raises(ValueError, match="backend must be one of"):
        create_aws_emitter(backend="kinesis")
