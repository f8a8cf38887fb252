"""Settings shared by the emitter and the adapter, the aiobotocore clients, and error mapping.

Credentials come from the default AWS chain (instance profile, task role, Lambda role, env)
unless a config sets keys, which are ``Secret`` and never shown. Throttling and transient
service errors are retried by botocore's own ``standard`` retry mode (exponential backoff with
jitter, retry quotas) rather than by hand-written loops here; what is still failing after
``max_attempts`` becomes a RetryableError for the router.
"""

from __future__ import annotations

import contextlib
import re
import string
from typing import Any

import attrs
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from wafermon import FieldValueError, Health, PermanentError, RetryableError, Seconds, Secret

PLACEHOLDERS = frozenset({"site_id", "app"})
#: Error codes that mean "try later" (after botocore's own retries) or an operator's fix
#: (credentials, permissions): the events stay in the spool rather than the dead-letter file.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "LimitExceededException",
        "OperationAbortedException",
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ResourceNotFoundException",  # a group or stream deleted while we write: recreated
    }
)


def _template(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    if names - PLACEHOLDERS:
        unknown = ", ".join(sorted(names - PLACEHOLDERS))
        raise FieldValueError(
            attribute.name, f"unknown placeholder {unknown}; use {{site_id}}, {{app}}"
        )


def _dimensions(_inst: object, attribute: attrs.Attribute, value: dict[str, str]) -> None:
    if len(value) > 28:  # 30 per datum, Site and App take two
        raise FieldValueError(attribute.name, f"at most 28 dimensions, got {len(value)}")
    for key, item in value.items():
        if not key or not item or len(key) > 255 or len(item) > 1024:
            raise FieldValueError(
                attribute.name, f"dimension {key!r}: name 1-255, value 1-1024 chars"
            )


@attrs.frozen(kw_only=True)
class AwsSettings:
    """Where and as whom to reach AWS; both component kinds take these keys."""

    region: str | None = None  # None: AWS_REGION / AWS_DEFAULT_REGION / the profile's
    endpoint_url: str | None = None  # a VPC endpoint, or a local stand-in in tests
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    max_attempts: int = 8  # botocore standard-mode attempts per call (throttling, 5xx)
    timeout: Seconds = Seconds(30.0)
    log_group: str = attrs.field(default="/wafermon/{site_id}", validator=_template)
    log_stream: str = attrs.field(default="{app}", validator=_template)
    namespace: str = "Wafermon"
    dimensions: dict[str, str] = attrs.field(factory=dict, validator=_dimensions)


_GROUP_BAD = re.compile(r"[^A-Za-z0-9._/#-]")
_STREAM_BAD = re.compile(r"[:*]")


def log_group_name(template: str, site_id: str, app: str = "") -> str:
    """The log group for a site (and app): characters CloudWatch refuses become ``_``."""
    name = template.format(site_id=site_id, app=_GROUP_BAD.sub("_", app))
    return _GROUP_BAD.sub("_", name)[:512]


def log_stream_name(template: str, site_id: str, app: str) -> str:
    return _STREAM_BAD.sub("_", template.format(site_id=site_id, app=app))[:512]


class Clients:
    """One aiobotocore client per service, made on first use and closed together."""

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}

    async def get(self, service: str) -> Any:
        if service not in self._clients:
            s = self.settings
            config = Config(
                retries={"mode": "standard", "total_max_attempts": s.max_attempts},
                connect_timeout=s.timeout,
                read_timeout=s.timeout,
                user_agent_extra="wafermon",
            )
            keys = {
                "aws_access_key_id": s.access_key_id.reveal() if s.access_key_id else None,
                "aws_secret_access_key": (
                    s.secret_access_key.reveal() if s.secret_access_key else None
                ),
                "aws_session_token": s.session_token.reveal() if s.session_token else None,
            }
            self._clients[service] = await self._stack.enter_async_context(
                get_session().create_client(
                    service,
                    region_name=s.region,
                    endpoint_url=s.endpoint_url,
                    config=config,
                    **{k: v for k, v in keys.items() if v is not None},
                )
            )
        return self._clients[service]

    async def close(self) -> None:
        self._clients.clear()
        await self._stack.aclose()


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def delivery_error(what: str, exc: Exception) -> Exception:
    """The emitter-contract error for a failed AWS call (retryable unless AWS said the input
    is wrong); the message names the call and AWS's code, never a credential."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", ""))[:300]
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        text = f"{what}: {code}: {message}"
        if code in RETRYABLE_CODES or status >= 500 or status == 429:
            return RetryableError(text)
        return PermanentError(text)
    if isinstance(exc, BotoCoreError):
        return RetryableError(f"{what}: {type(exc).__name__}: {exc}")
    return exc


async def logs_health(clients: Clients) -> Health:
    """One cheap CloudWatch Logs call: reachable, and these credentials may use it."""
    try:
        client = await clients.get("logs")
        await client.describe_log_groups(limit=1)
    except (ClientError, BotoCoreError) as exc:
        return Health(False, str(delivery_error("DescribeLogGroups", exc)))
    return Health(True)
