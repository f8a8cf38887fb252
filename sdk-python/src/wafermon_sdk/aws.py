"""AWS helpers: where this process runs (EC2, ECS, Lambda), and clients that say so.

``get_aws_metadata()`` looks, in this order, at:

- Lambda: the ``AWS_LAMBDA_FUNCTION_NAME`` family of environment variables (no network);
- ECS: the task metadata endpoint v4 named by ``ECS_CONTAINER_METADATA_URI_V4``
  (``GET $URI`` for the container, ``GET $URI/task`` for the task);
- EC2: the instance metadata service with IMDSv2 (``PUT /latest/api/token``, then
  ``GET /latest/meta-data/...`` with the token), at ``AWS_EC2_METADATA_SERVICE_ENDPOINT``
  (default ``http://169.254.169.254``, the variable botocore reads too);
  ``AWS_EC2_METADATA_DISABLED=true`` skips it.

Each request has a short timeout (``WAFERMON_AWS_METADATA_TIMEOUT``, default 1 s), the answer
is cached per process, and anything unreachable just yields ``{}``: the helpers never fail a
job because metadata is missing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from .client import Client, SidecarEmitter, get_client
from .monitored import AppRef, Monitored

F = TypeVar("F", bound=Callable[..., Any])

IMDS_DEFAULT = "http://169.254.169.254"
IMDS_ENV = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
IMDS_DISABLED_ENV = "AWS_EC2_METADATA_DISABLED"
ECS_ENV = "ECS_CONTAINER_METADATA_URI_V4"
TIMEOUT_ENV = "WAFERMON_AWS_METADATA_TIMEOUT"
TOKEN_TTL_S = 21600
EC2_FIELDS = {
    "instance_id": "instance-id",
    "instance_type": "instance-type",
    "ami_id": "ami-id",
    "availability_zone": "placement/availability-zone",
    "region": "placement/region",
    "local_hostname": "local-hostname",
    "local_ipv4": "local-ipv4",
}
LAMBDA_ENV = {
    "function_name": "AWS_LAMBDA_FUNCTION_NAME",
    "function_version": "AWS_LAMBDA_FUNCTION_VERSION",
    "memory_mb": "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "log_group": "AWS_LAMBDA_LOG_GROUP_NAME",
    "log_stream": "AWS_LAMBDA_LOG_STREAM_NAME",
    "execution_env": "AWS_EXECUTION_ENV",
}

_cache: dict[int, dict[str, Any]] = {}


def get_aws_metadata(*, refresh: bool = False, timeout: float | None = None) -> dict[str, Any]:
    """Where this process runs on AWS: ``{"platform": "ec2"|"ecs"|"lambda", ...}``, or ``{}``."""
    pid = os.getpid()
    if not refresh and pid in _cache:
        return dict(_cache[pid])
    if timeout is None:
        try:
            timeout = float(os.environ.get(TIMEOUT_ENV, "1"))
        except ValueError:
            timeout = 1.0
    found = _lambda() or _ecs(timeout) or _ec2(timeout) or {}
    _cache.clear()
    _cache[pid] = found
    return dict(found)


def _region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


def _lambda() -> dict[str, Any] | None:
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    found: dict[str, Any] = {"platform": "lambda"}
    for key, variable in LAMBDA_ENV.items():
        if os.environ.get(variable):
            found[key] = os.environ[variable]
    if "memory_mb" in found and found["memory_mb"].isdigit():
        found["memory_mb"] = int(found["memory_mb"])
    if _region():
        found["region"] = _region()
    return found


def _ecs(timeout: float) -> dict[str, Any] | None:
    base = os.environ.get(ECS_ENV, "").rstrip("/")
    if not base:
        return None
    try:
        with httpx.Client(timeout=timeout) as http:
            container = http.get(base).raise_for_status().json()
            task = http.get(f"{base}/task").raise_for_status().json()
    except (httpx.HTTPError, ValueError):
        return None
    found: dict[str, Any] = {"platform": "ecs"}
    picks = {
        "cluster": task.get("Cluster"),
        "task_arn": task.get("TaskARN"),
        "task_family": task.get("Family"),
        "task_revision": task.get("Revision"),
        "launch_type": task.get("LaunchType"),
        "availability_zone": task.get("AvailabilityZone"),
        "container_name": container.get("Name"),
        "container_id": container.get("DockerId"),
        "image": container.get("Image"),
    }
    found.update({k: v for k, v in picks.items() if v})
    zone = found.get("availability_zone")
    region = _region() or (zone[:-1] if isinstance(zone, str) and zone else None)
    if region:
        found["region"] = region
    return found


def _ec2(timeout: float) -> dict[str, Any] | None:
    if os.environ.get(IMDS_DISABLED_ENV, "").strip().lower() in ("1", "true", "yes"):
        return None
    base = os.environ.get(IMDS_ENV, IMDS_DEFAULT).rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=timeout) as http:
            token = (
                http.put(
                    "/latest/api/token",
                    headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)},
                )
                .raise_for_status()
                .text
            )
            headers = {"X-aws-ec2-metadata-token": token}
            found: dict[str, Any] = {"platform": "ec2"}
            for key, path in EC2_FIELDS.items():
                response = http.get(f"/latest/meta-data/{path}", headers=headers)
                if response.status_code == 200 and response.text:
                    found[key] = response.text.strip()
    except httpx.HTTPError:
        return None
    return found if len(found) > 1 else None


def create_aws_emitter(
    base_url: str | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    **settings: Any,
) -> SidecarEmitter:
    """A SidecarEmitter whose jobs carry ``metadata["aws"]`` = ``get_aws_metadata()``."""
    extra = dict(metadata or {})
    aws = get_aws_metadata()
    if aws:
        extra["aws"] = aws
    return SidecarEmitter(base_url, metadata=extra, **settings)


def monitored_lambda_handler(
    site_id: str | None,
    app: AppRef,
    *,
    client: Client | None = None,
    flush_timeout: float | None = None,
) -> Callable[[F], F]:
    """Decorate a Lambda handler: each invocation is a job keyed by its request id.

    The job's metadata has the request id, the function's details and ``aws`` metadata; the
    client is flushed before the handler returns, because Lambda freezes the process between
    invocations (a background thread would not run).
    """

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            shipper = client or get_client()
            request_id = getattr(context, "aws_request_id", None)
            metadata: dict[str, Any] = {"aws": get_aws_metadata()}
            if request_id:
                metadata["aws_request_id"] = request_id
            try:
                with Monitored(
                    site_id, app, "job", business_key=request_id, metadata=metadata, client=shipper
                ):
                    return handler(event, context)
            finally:
                shipper.flush(flush_timeout)

        return run  # type: ignore[return-value]

    return decorate
