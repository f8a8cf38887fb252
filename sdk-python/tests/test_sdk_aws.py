"""AWS helpers against local stand-ins for the metadata endpoints (aws_stand_in.py says
what they simulate and why)."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from aws_stand_in import ECS_TASK, TOKEN, StandIn, stand_in
from sdk_helpers import free_port, running_stack, wait_until

from wafermon_sdk import AppRef, create_aws_emitter, get_aws_metadata, monitored_lambda_handler


@pytest.fixture(autouse=True)
def no_aws(monkeypatch):
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "ECS_CONTAINER_METADATA_URI_V4", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{free_port()}")


def test_ec2_through_imdsv2(monkeypatch):
    with stand_in() as url:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)
        found = get_aws_metadata(refresh=True)
    assert found == {
        "platform": "ec2",
        "instance_id": "i-0abc1234def567890",
        "instance_type": "c6i.4xlarge",
        "ami_id": "ami-0123456789abcdef0",
        "availability_zone": "eu-central-1a",
        "region": "eu-central-1",
        "local_hostname": "ip-10-0-1-17.eu-central-1.compute.internal",
        "local_ipv4": "10.0.1.17",
    }
    assert StandIn.requests[0] == ("PUT", "/latest/api/token", "21600")
    assert all(token == TOKEN for method, _path, token in StandIn.requests[1:])


def test_ecs_task_metadata_v4(monkeypatch):
    with stand_in() as url:
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", f"{url}/v4/container")
        found = get_aws_metadata(refresh=True)
    assert found == {
        "platform": "ecs",
        "cluster": "fab1-cluster",
        "task_arn": ECS_TASK["TaskARN"],
        "task_family": "wafer-worker",
        "task_revision": "7",
        "launch_type": "FARGATE",
        "availability_zone": "eu-central-1b",
        "container_name": "wafer-worker",
        "container_id": "cafe01",
        "image": "fab/wafer:2.1.0",
        "region": "eu-central-1",
    }


def test_lambda_from_its_environment(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "wafer-sorter")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert get_aws_metadata(refresh=True) == {
        "platform": "lambda",
        "function_name": "wafer-sorter",
        "function_version": "$LATEST",
        "memory_mb": 512,
        "region": "us-east-1",
    }


def test_nowhere_on_aws_is_an_empty_dict_quickly(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert get_aws_metadata(refresh=True) == {}
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    assert get_aws_metadata(refresh=True) == {}  # nothing listens on the endpoint port


def test_aws_emitter_and_lambda_handler_carry_the_metadata_to_the_gateway(tmp_path, monkeypatch):
    app = AppRef(name="wafer-sorter", version="3")
    with stand_in() as url, running_stack(tmp_path / "stack") as stack:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)
        get_aws_metadata(refresh=True)
        emitter = create_aws_emitter(stack.sidecar_url, site_id="fab1")
        with emitter.monitored(app=app, business_key="ec2-job") as job:
            pass
        assert emitter.flush(20)
        detail = stack.wait_for_job(job.entity_id, lambda d: d["job"]["status"] == "finished")
        assert detail["job"]["metadata"]["aws"]["instance_id"] == "i-0abc1234def567890"
        emitter.close()

        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "wafer-sorter")
        get_aws_metadata(refresh=True)
        client = create_aws_emitter(stack.sidecar_url, flush_interval="30s")

        @monitored_lambda_handler("fab1", app, client=client)
        def handler(event, context):
            return {"sorted": len(event["wafers"])}

        context = SimpleNamespace(aws_request_id="req-8d1f", function_name="wafer-sorter")
        assert handler({"wafers": [1, 2, 3]}, context) == {"sorted": 3}
        assert client.stats()["pending"] == 0  # flushed before returning: Lambda freezes after
        jobs = stack.gateway.url + "/v1/jobs?business_key=req-8d1f&status=finished"
        (stored,) = wait_until(lambda: httpx.get(jobs, timeout=10).json()["items"])
        assert stored["metadata"]["aws_request_id"] == "req-8d1f"
        assert stored["metadata"]["aws"]["function_name"] == "wafer-sorter"
        client.close()
