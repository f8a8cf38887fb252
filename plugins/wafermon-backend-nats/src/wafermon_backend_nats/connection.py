"""How the NATS emitter and consumer connect: their shared settings and ``Link``.

Connecting fails fast: nats-py's defaults retry a server that is down for two minutes (60
attempts, 2 s apart) and log a traceback each time. Here a connect gives up after
``reconnect_attempts`` short tries and raises RetryableError; a connection that later gives up
reconnecting is closed, and the next emit or fetch opens a new one. So a long outage is a
series of quick RetryableErrors the router and the gateway's runner back off from, never a call
that hangs. Credentials are Secrets, never in a server URL (so they cannot reach a log line).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from wafermon import (
    ByteSize,
    FieldValueError,
    Health,
    RetryableError,
    Seconds,
    Secret,
    describe,
)

#: What a subject token may hold; anything else in a site id or app name becomes ``_``.
_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_SUBJECT = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def subject_token(text: str) -> str:
    """A NATS subject token for a site id or app name: dots, spaces and wildcards become ``_``."""
    return _TOKEN_UNSAFE.sub("_", text) or "_"


def _servers(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    if not value:
        raise FieldValueError(attribute.name, "name at least one nats:// or tls:// URL")
    for url in value:
        if not url.startswith(("nats://", "tls://")):
            raise FieldValueError(attribute.name, f"{url!r} is not a nats:// or tls:// URL")
        if "@" in url:
            raise FieldValueError(
                attribute.name, "put credentials in user/password or token, not in the URL"
            )


def _name(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not _STREAM_NAME.match(value):
        raise FieldValueError(attribute.name, f"{value!r}: letters, digits, _ and - only")


def _subject(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not _SUBJECT.match(value):
        raise FieldValueError(
            attribute.name, f"{value!r}: dot-separated tokens of letters, digits, _ and -"
        )


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise FieldValueError(attribute.name, f"must be more than 0, got {value}")


@attrs.frozen(kw_only=True)
class ConnectionSettings:
    """How to reach NATS and which stream holds the events (emitter and consumer alike)."""

    servers: list[str] = attrs.field(factory=lambda: ["nats://127.0.0.1:4222"], validator=_servers)
    user: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    tls_ca: Path | None = None  # CA bundle for tls:// servers; the system's when unset
    tls_cert: Path | None = None  # client certificate, when the server asks for one
    tls_key: Path | None = None
    connect_timeout: Seconds = attrs.field(default=Seconds(2.0), validator=_positive)
    reconnect_attempts: int = 3  # per outage, 0.5 s apart; then the next call reconnects
    request_timeout: Seconds = attrs.field(default=Seconds(5.0), validator=_positive)
    stream: str = attrs.field(default="WAFERMON_EVENTS", validator=_name)
    subject_prefix: str = attrs.field(default="wafermon.events", validator=_subject)
    create_stream: bool = True  # create the stream (and the dead-letter one) when missing
    duplicate_window: Seconds = attrs.field(default=Seconds(120.0), validator=_positive)
    max_age: Seconds = Seconds(7 * 86400.0)  # 0: kept until max_bytes pushes them out
    max_bytes: ByteSize | None = None  # the stream's size limit; new messages refused past it
    replicas: int = 1

    def __attrs_post_init__(self) -> None:
        if self.password is not None and self.user is None:
            raise FieldValueError("password", "needs user")
        if self.token is not None and self.user is not None:
            raise FieldValueError("token", "use either token or user/password, not both")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise FieldValueError("tls_cert", "tls_cert and tls_key go together")

    def stream_config(self) -> StreamConfig:
        """The events stream: file storage, de-duplication by Nats-Msg-Id, refuse when full
        (DiscardPolicy.NEW), so a full stream is an error the emitter sees, not silent loss."""
        return StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.>"],
            storage=StorageType.FILE,
            duplicate_window=float(self.duplicate_window),
            max_age=float(self.max_age),
            max_bytes=self.max_bytes if self.max_bytes is not None else -1,
            discard=DiscardPolicy.NEW,
            num_replicas=self.replicas,
        )


def _tls_context(settings: ConnectionSettings) -> ssl.SSLContext | None:
    if not (
        any(s.startswith("tls://") for s in settings.servers)
        or settings.tls_ca
        or settings.tls_cert
    ):
        return None
    context = ssl.create_default_context(cafile=str(settings.tls_ca) if settings.tls_ca else None)
    if settings.tls_cert and settings.tls_key:
        context.load_cert_chain(str(settings.tls_cert), str(settings.tls_key))
    return context


async def _quiet(_exc: Exception) -> None:
    """nats-py logs a traceback per failed reconnect unless given a callback; the component
    reports the state through health() and its errors instead."""


async def connect(settings: ConnectionSettings, name: str) -> Client:
    """A connection that fails fast (see the module docstring); RetryableError when down."""
    options: dict = {
        "servers": settings.servers,
        "name": name,
        "connect_timeout": float(settings.connect_timeout),
        "max_reconnect_attempts": settings.reconnect_attempts,
        "reconnect_time_wait": 0.5,
        "error_cb": _quiet,
        "tls": _tls_context(settings),
    }
    if settings.user is not None:
        options["user"] = settings.user
        options["password"] = settings.password.reveal() if settings.password else None
    if settings.token is not None:
        options["token"] = settings.token.reveal()
    try:
        return await nats.connect(**options)
    except Exception as exc:
        raise RetryableError(f"{name}: cannot connect to NATS: {describe(exc)}") from exc


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream when it does not exist; an existing one is left as its owner set it.

    Two components may create it at the same moment: the server refuses the second as
    "subjects overlap", and the stream the first one made is what we wanted.
    """
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        try:
            await js.add_stream(config)
        except BadRequestError as refused:
            try:
                await js.stream_info(config.name)
            except NotFoundError:
                raise refused from None  # another stream holds these subjects


class Link:
    """One component's connection: opened on first use, replaced once nats-py gave up on it.

    ``prepare`` runs on every new connection (create the stream, bind the consumer); if it
    fails the connection is closed again and the caller gets RetryableError.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        name: str,
        prepare: Callable[[JetStreamContext], Awaitable[None]],
        **jetstream: object,
    ) -> None:
        self.settings = settings
        self.name = name
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.connects = 0
        self.last_error = ""
        self._prepare = prepare
        self._jetstream = jetstream
        self._lock = asyncio.Lock()  # one (re)connect at a time

    async def jetstream(self) -> JetStreamContext:
        """The live JetStream context, connecting (fast, RetryableError) when there is none."""
        async with self._lock:
            if self.nc is not None and not self.nc.is_closed and self.js is not None:
                return self.js
            await self.close()
            nc = await connect(self.settings, self.name)
            self.connects += 1
            js = nc.jetstream(timeout=float(self.settings.request_timeout), **self._jetstream)
            try:
                await self._prepare(js)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await nc.close()
                raise self.failed(f"cannot set up JetStream: {describe(exc)}") from exc
            self.nc, self.js, self.last_error = nc, js, ""
            return js

    def failed(self, problem: str) -> RetryableError:
        """Remember ``problem`` for health() and return it as a RetryableError to raise."""
        self.last_error = f"{self.name}: {problem}"
        return RetryableError(self.last_error)

    def health(self) -> Health:
        nc = self.nc
        if nc is None or nc.is_closed:
            return Health(False, self.last_error or "not connected")
        if not nc.is_connected:
            return Health(False, "reconnecting to NATS")
        return Health(not self.last_error, self.last_error or "connected")

    async def close(self) -> None:
        nc, self.nc, self.js = self.nc, None, None
        if nc is not None and not nc.is_closed:
            # close, not drain: drain can wait its whole 30 s timeout (../shared/infra/nats.md)
            with contextlib.suppress(Exception):
                await nc.close()
