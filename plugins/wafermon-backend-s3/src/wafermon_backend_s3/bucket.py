"""S3Settings and Bucket: one aiobotocore client per component, and the few S3 calls we make.

Why aiobotocore: it is botocore (SigV4, the credential chain with profiles and environment,
endpoint and addressing options, retries with backoff in ``standard`` mode) on asyncio, so no
request signing or retry loop is written here, and it talks to AWS S3 and to any S3-compatible
store (SeaweedFS, MinIO, Ceph) alike. Every S3 failure leaves this module as ``RetryableError``
with a reason that names the call and the key but no credential.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
from aiobotocore.session import AioSession
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from wafermon import ByteSize, Health, RetryableError, Seconds, Secret
from wafermon.errors import FieldValueError

log = logging.getLogger(__name__)

#: S3's smallest part (all but the last); parts below it are refused by AWS.
MIN_PART_BYTES = 5 * 2**20


def _as_secret(value: Secret | str | None) -> Secret | None:
    return value if value is None or isinstance(value, Secret) else Secret(value)


def _prefix(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    parts = value.split("/")
    if value.startswith("/") or value.endswith("/") or any(p in ("", ".", "..") for p in parts):
        raise FieldValueError(attribute.name, f"must be like 'wafermon/events', got {value!r}")


def _at_least(low: float):
    def check(_inst: object, attribute: attrs.Attribute, value: float) -> None:
        if value < low:
            raise FieldValueError(attribute.name, f"must be at least {low:g}, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class S3Settings:
    """Where the objects live and how to reach them; shared by the emitter and the source.

    Credentials: ``access_key_id`` + ``secret_access_key`` from the config (held as
    ``Secret``), else the named ``profile``, else botocore's usual chain (environment, shared
    files, instance role).
    """

    bucket: str
    prefix: str = attrs.field(default="wafermon", validator=_prefix)
    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool = False
    profile: str | None = None
    access_key_id: Secret | None = attrs.field(default=None, converter=_as_secret)
    secret_access_key: Secret | None = attrs.field(default=None, converter=_as_secret)
    connect_timeout: Seconds = attrs.field(default=Seconds(10.0), validator=_at_least(0.1))
    read_timeout: Seconds = attrs.field(default=Seconds(60.0), validator=_at_least(0.1))
    max_attempts: int = attrs.field(default=5, validator=_at_least(1))
    part_size: ByteSize = attrs.field(
        default=ByteSize(8 * 2**20), validator=_at_least(MIN_PART_BYTES)
    )

    def __attrs_post_init__(self) -> None:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise FieldValueError(
                "secret_access_key", "give both access_key_id and this, or neither"
            )


def s3_reason(exc: BaseException) -> str:
    """A short cause: the S3 error code and message, or the connection problem."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip(": ")
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def s3_errors(action: str):
    """S3 and connection failures as RetryableError (the data stays where it was)."""
    try:
        yield
    except (ClientError, BotoCoreError, OSError, TimeoutError) as exc:
        raise RetryableError(f"S3 {action}: {s3_reason(exc)}") from exc


def is_missing(exc: BaseException) -> bool:
    if isinstance(exc, RetryableError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
        "NoSuchKey",
        "404",
        "NotFound",
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@attrs.frozen
class ObjectInfo:
    key: str
    size: int
    last_modified: Any = None  # aware datetime from the listing


class Bucket:
    """The S3 calls wafermon makes, on one client; ``open()`` / ``close()`` bound its life."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self.counters = {"put": 0, "get": 0, "get_bytes": 0, "list": 0, "delete": 0}

    async def open(self) -> None:
        s = self.settings
        session = AioSession(profile=s.profile)
        config = Config(
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            retries={"max_attempts": s.max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if s.path_style else "auto"},
        )
        keys = {}
        if s.access_key_id is not None and s.secret_access_key is not None:
            keys = {
                "aws_access_key_id": s.access_key_id.reveal(),
                "aws_secret_access_key": s.secret_access_key.reveal(),
            }
        stack = contextlib.AsyncExitStack()
        with s3_errors("connect"):
            self._client = await stack.enter_async_context(
                session.create_client(
                    "s3", endpoint_url=s.endpoint_url, region_name=s.region, config=config, **keys
                )
            )
        self._stack = stack

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RetryableError("S3 client is not started")
        return self._client

    async def health(self) -> Health:
        """Whether the bucket answers (a HEAD); never raises."""
        try:
            await self.head_bucket()
        except Exception as exc:  # noqa: BLE001 - health must not raise
            return Health(False, str(exc))
        return Health(True)

    async def head_bucket(self) -> None:
        with s3_errors(f"head bucket {self.settings.bucket}"):
            await self.client.head_bucket(Bucket=self.settings.bucket)

    async def put(self, key: str, data: bytes, content_type: str, *, multipart_above: int) -> None:
        """Store ``data`` at ``key``, in parts when it is larger than ``multipart_above``."""
        self.counters["put"] += 1
        if len(data) > multipart_above:
            await self._put_multipart(key, data, content_type)
            return
        with s3_errors(f"put {key}"):
            await self.client.put_object(
                Bucket=self.settings.bucket, Key=key, Body=data, ContentType=content_type
            )

    async def _put_multipart(self, key: str, data: bytes, content_type: str) -> None:
        bucket, size = self.settings.bucket, self.settings.part_size
        with s3_errors(f"start multipart upload of {key}"):
            upload = await self.client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type
            )
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, len(data), size), 1):
                with s3_errors(f"upload part {number} of {key}"):
                    answer = await self.client.upload_part(
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data[start : start + size],
                    )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            with s3_errors(f"complete multipart upload of {key}"):
                await self.client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            # An abandoned upload keeps its parts (and costs storage) until aborted.
            with contextlib.suppress(Exception):
                await self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    async def get(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """The object's bytes, or ``[start, end)`` of them."""
        extra = (
            {} if byte_range is None else {"Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"}
        )
        self.counters["get"] += 1
        with s3_errors(f"get {key}"):
            answer = await self.client.get_object(Bucket=self.settings.bucket, Key=key, **extra)
            async with answer["Body"] as body:
                data = await body.read()
        self.counters["get_bytes"] += len(data)
        return data

    async def get_or_none(self, key: str) -> bytes | None:
        try:
            return await self.get(key)
        except RetryableError as exc:
            if is_missing(exc):
                return None
            raise

    async def list(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[Any]:
        """ObjectInfo for each object under ``prefix`` (after ``start_after``); with a
        delimiter, also the common prefixes (as plain strings ending in the delimiter). Pages
        are fetched lazily."""
        paginator = self.client.get_paginator("list_objects_v2")
        extra: dict[str, str] = {"Delimiter": delimiter} if delimiter else {}
        if start_after:
            extra["StartAfter"] = start_after
        with s3_errors(f"list {prefix}"):
            async for page in paginator.paginate(
                Bucket=self.settings.bucket, Prefix=prefix, **extra
            ):
                self.counters["list"] += 1
                for item in page.get("CommonPrefixes", []):
                    yield item["Prefix"]
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"], item["Size"], item.get("LastModified"))

    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        return [o async for o in self.list(prefix)]

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete keys (missing ones are fine), 1000 per request as S3 allows."""
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self.counters["delete"] += len(chunk)
            with s3_errors(f"delete {len(chunk)} objects under {chunk[0]}"):
                answer = await self.client.delete_objects(
                    Bucket=self.settings.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise RetryableError(
                    f"S3 delete {first.get('Key')}: {first.get('Code')}: {first.get('Message')}"
                )

    async def copy(self, source: str, target: str) -> None:
        with s3_errors(f"copy {source} to {target}"):
            await self.client.copy_object(
                Bucket=self.settings.bucket,
                Key=target,
                CopySource={"Bucket": self.settings.bucket, "Key": source},
            )
