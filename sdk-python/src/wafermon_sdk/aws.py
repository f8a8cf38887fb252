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

``create_aws_emitter(backend="cloudwatch")`` (or ``WAFERMON_AWS_BACKEND=cloudwatch``) and
``monitored_lambda_handler(..., backend="cloudwatch")`` skip the sidecar: the client runs the
``cloudwatch`` backend plugin in direct mode (logs, metrics and X-Ray), with the detected
platform as metric dimensions and X-Ray origin. Credentials come from the AWS chain (the
instance, task or function role); the helper refuses keys in its arguments so none is ever
written into the generated site config.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

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


BACKEND_ENV = "WAFERMON_AWS_BACKEND"
BACKENDS = ("sidecar", "cloudwatch")
#: X-Ray's origin for each platform get_aws_metadata() detects.
XRAY_ORIGINS = {
    "ec2": "AWS::EC2::Instance",
    "ecs": "AWS::ECS::Container",
    "lambda": "AWS::Lambda::Function",
}
#: (metadata key, CloudWatch dimension) per platform: few, so metrics stay cheap to query.
DIMENSIONS = {
    "ec2": (("instance_id", "InstanceId"),),
    "ecs": (("cluster", "ClusterName"), ("task_family", "TaskFamily")),
    "lambda": (("function_name", "FunctionName"),),
}
_CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token")


def aws_dimensions(found: Mapping[str, Any]) -> dict[str, str]:
    """CloudWatch dimensions for a ``get_aws_metadata()`` answer: Platform and its identity
    (InstanceId; ClusterName and TaskFamily; FunctionName); ``{}`` off AWS."""
    platform = found.get("platform")
    if platform not in DIMENSIONS:
        return {}
    dims = {"Platform": str(platform)}
    for key, name in DIMENSIONS[platform]:
        if found.get(key):
            dims[name] = str(found[key])[:1024]
    return dims


def create_aws_emitter(
    base_url: str | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    backend: str | None = None,
    cloudwatch: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Client:
    """A client whose jobs carry ``metadata["aws"]`` = ``get_aws_metadata()``.

    ``backend`` (default ``WAFERMON_AWS_BACKEND``, else ``sidecar``): ``sidecar`` gives a
    SidecarEmitter posting to ``base_url``; ``cloudwatch`` gives a direct-mode Client running
    the cloudwatch backend with ``cloudwatch`` as its config (region, log_group, namespace,
    xray ...; X-Ray is on unless it says ``xray: false``) and the platform as dimensions.
    """
    extra = dict(metadata or {})
    aws = get_aws_metadata()
    if aws:
        extra["aws"] = aws
    chosen = backend or os.environ.get(BACKEND_ENV) or "sidecar"
    if chosen not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {chosen!r}")
    if chosen == "sidecar":
        return SidecarEmitter(base_url, metadata=extra, **settings)
    site_config = _cloudwatch_site_config(aws, cloudwatch or {}, settings.get("site_id"))
    return Client(metadata=extra, mode="direct", site_config=site_config, **settings)


def _cloudwatch_site_config(
    aws: Mapping[str, Any], given: Mapping[str, Any], site_id: str | None
) -> Path:
    """A private site config naming one ``cloudwatch`` backend; read by the client's shipper
    thread whenever it (re)builds its sinks, so it stays for the life of the process."""
    refused = [key for key in _CREDENTIAL_KEYS if key in given]
    if refused:
        raise ValueError(
            f"cloudwatch: {', '.join(refused)} not accepted here; use the AWS credential chain "
            "(the instance, task or function role, or AWS_* variables)"
        )
    config: dict[str, Any] = {"xray": True, **given}
    config["dimensions"] = {**aws_dimensions(aws), **dict(given.get("dimensions") or {})}
    origin = XRAY_ORIGINS.get(str(aws.get("platform")))
    if origin and "xray_origin" not in given:
        config["xray_origin"] = origin
    if "region" not in config and aws.get("region"):
        config["region"] = aws["region"]
    site = site_id or os.environ.get("WAFERMON_SITE_ID") or "aws"
    folder = Path(tempfile.mkdtemp(prefix="wafermon-aws-"))  # 0700
    path = folder / "site.yaml"
    text = yaml.safe_dump(
        {
            "site_id": site,
            "backends": [{"name": "cloudwatch", "type": "cloudwatch", "config": config}],
        },
        sort_keys=False,
    )
    # ``$`` would start an interpolation in a site config; a literal one is written ``$$``.
    path.write_text(text.replace("$", "$$"))
    path.chmod(0o600)
    return path


def monitored_lambda_handler(
    site_id: str | None,
    app: AppRef,
    *,
    client: Client | None = None,
    flush_timeout: float | None = None,
    backend: str | None = None,
    cloudwatch: Mapping[str, Any] | None = None,
) -> Callable[[F], F]:
    """Decorate a Lambda handler: each invocation is a job keyed by its request id.

    The job's metadata has the request id, the function's details and ``aws`` metadata; the
    client is flushed before the handler returns, because Lambda freezes the process between
    invocations (a background thread would not run). Without ``client``, ``backend`` (or
    ``WAFERMON_AWS_BACKEND``) ``cloudwatch`` makes one ``create_aws_emitter`` client on the
    first invocation and keeps it for the warm ones; otherwise the default client is used.
    """
    made: list[Client] = []

    def pick() -> Client:
        if client is not None:
            return client
        if (backend or os.environ.get(BACKEND_ENV)) == "cloudwatch":
            if not made:
                named = {"site_id": site_id} if site_id else {}
                made.append(
                    create_aws_emitter(backend="cloudwatch", cloudwatch=cloudwatch, **named)
                )
            return made[0]
        return get_client()

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            shipper = pick()
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
