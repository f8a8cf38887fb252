"""NatsConsumer: a gateway's member of one durable JetStream pull consumer (``gateway.streams``).

Every gateway of a group binds the same durable consumer, so JetStream hands each message to
one of them. Acknowledgement is explicit and per message: ``StreamBatch.commit`` acks every
message of a batch with ``ack_sync`` (the server confirmed each ack) after the gateway's store
committed it. A message not acked within ``ack_wait`` (its gateway died, or its store is slow)
is delivered again, to any member; the store drops the copy by event_id.

Bounded: a fetch asks the server for at most ``max_messages`` (a pull request, nothing pushed
ahead), and ``max_ack_pending`` caps what the whole group holds unacked, so a stalled store
makes the server stop handing out messages instead of gateways buffering them. Fetches are
batches of at least 2: nats-py's single-message fetch takes another path that can leave
``drain`` hanging (../shared/infra/nats.md); a request for 1 is served as 1 of a batch of 2
with the second left for the next fetch.

Dead letters: ``StreamBatch.dead_letter`` publishes the body to ``dead_letter_subject`` with
the reason and origin in headers (``wafermon-dead-letter-reason`` / ``-where``) and waits for
the PubAck; the original is acked with the rest at commit. A member that closes with messages
fetched but not committed (a stopping gateway, a batch it gives up on) naks them, so another
member gets them at once rather than after ``ack_wait``. The dead-letter stream
(``dead_letter_stream``, file storage) is created with the events stream when missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import attrs
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from wafermon import (
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_WHERE_HEADER,
    FieldValueError,
    Health,
    Seconds,
    StreamBatch,
    StreamConsumer,
    StreamMessage,
    describe,
)

from .connection import ConnectionSettings, Link, ensure_stream

REASON_CHARS = 1000  # of a dead-letter reason kept in its header (one line)


def _at_least_one(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise FieldValueError(attribute.name, f"must be at least 1, got {value}")


@attrs.frozen(kw_only=True)
class ConsumerSettings(ConnectionSettings):
    """``config:`` of a ``type: nats`` entry under ``gateway.streams``."""

    durable: str = "wafermon-gateway"  # every gateway of the group names the same one
    filter_subject: str | None = None  # e.g. wafermon.events.fab1.> ; the whole stream if unset
    ack_wait: Seconds = Seconds(30.0)  # unacked this long: delivered again to any member
    max_ack_pending: int = attrs.field(default=10_000, validator=_at_least_one)  # group-wide
    max_deliver: int = -1  # -1: until stored (poison is dead-lettered, not redelivered)
    dead_letter_subject: str = "wafermon.dead.events"
    dead_letter_stream: str = "WAFERMON_DEAD"

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=float(self.ack_wait),
            max_ack_pending=self.max_ack_pending,
            max_deliver=self.max_deliver,
            filter_subject=self.filter_subject,
        )

    def dead_letter_config(self) -> StreamConfig:
        return StreamConfig(
            name=self.dead_letter_stream,
            subjects=[self.dead_letter_subject],
            storage=StorageType.FILE,
            duplicate_window=float(self.duplicate_window),
            max_age=float(self.max_age),
            num_replicas=self.replicas,
        )


class NatsConsumer(StreamConsumer):
    Settings = ConsumerSettings
    settings: ConsumerSettings

    def __init__(self, name: str, settings: ConsumerSettings) -> None:
        super().__init__(name, settings)
        self._link = Link(settings, f"wafermon {name}", self._prepare)
        self._sub: JetStreamContext.PullSubscription | None = None
        self._spare: deque[Msg] = deque()  # the 2nd message of a batch-of-2 fetch for 1
        self._unsettled: dict[int, Msg] = {}  # fetched, not yet acked: nak'ed at close
        self._where = f"{settings.stream}/{settings.durable}"
        self._stats = dict.fromkeys(("fetched", "acked", "dead_lettered"), 0.0)

    async def _prepare(self, js: JetStreamContext) -> None:
        settings = self.settings
        if settings.create_stream:
            await ensure_stream(js, settings.stream_config())
            await ensure_stream(js, settings.dead_letter_config())
        try:
            await js.consumer_info(settings.stream, settings.durable)
        except NotFoundError:
            # Several gateways may get here at once: the server creates the durable once and
            # answers the same config with the existing consumer.
            await js.add_consumer(settings.stream, settings.consumer_config())
        self._spare.clear()
        self._sub = await js.pull_subscribe_bind(durable=settings.durable, stream=settings.stream)

    async def start(self) -> None:
        await self._link.jetstream()

    async def close(self) -> None:
        """Leave without acking: what this member holds is nak'ed, so the server hands it to
        another member now instead of after ack_wait (a killed gateway cannot: ack_wait)."""
        held = [*self._unsettled.values(), *self._spare]
        self._sub = None
        self._spare.clear()
        self._unsettled.clear()
        nc = self._link.nc
        if held and nc is not None and nc.is_connected:
            with contextlib.suppress(Exception):
                for msg in held:
                    await msg.nak()
                await nc.flush(timeout=1)
        await self._link.close()

    async def health(self) -> Health:
        return self._link.health()

    def stats(self) -> dict[str, float]:
        return {**self._stats, "connects": float(self._link.connects)}

    async def fetch(self, max_messages: int, timeout: float) -> StreamBatch:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        await self._link.jetstream()
        sub = self._sub
        assert sub is not None
        msgs: list[Msg] = []
        while self._spare and len(msgs) < max_messages:
            msgs.append(self._spare.popleft())
        if len(msgs) < max_messages:
            try:
                got = await sub.fetch(max(2, max_messages - len(msgs)), timeout=timeout)
            except TimeoutError:
                # nats.errors.TimeoutError, or asyncio's (the same class as TimeoutError):
                # nats-py raises either, depending on where in its fetch the time ran out
                got = []
            except (nats.errors.ConnectionClosedError, nats.errors.NoRespondersError) as exc:
                await self._link.close()
                raise self._link.failed(f"fetch failed: {describe(exc)}") from exc
            room = max_messages - len(msgs)
            msgs += got[:room]
            self._spare.extend(got[room:])
        self._stats["fetched"] += len(msgs)
        self._unsettled.update((id(msg), msg) for msg in msgs)
        return self._batch(msgs)

    def _batch(self, msgs: list[Msg]) -> StreamBatch:
        messages = [
            StreamMessage(
                body=msg.data,
                where=f"{self._where}#{msg.metadata.sequence.stream}",
                headers={k: v.encode() for k, v in (msg.headers or {}).items()},
            )
            for msg in msgs
        ]
        originals = {id(message): msg for message, msg in zip(messages, msgs, strict=True)}

        async def commit() -> None:
            await self._ack(msgs)

        async def dead_letter(message: StreamMessage, reason: str) -> None:
            await self._dead_letter(originals[id(message)], message.where, reason)

        return StreamBatch(messages, on_commit=commit, on_dead_letter=dead_letter)

    async def _ack(self, msgs: list[Msg]) -> None:
        """Ack each message and wait for the server to confirm every ack."""
        wait = float(self.settings.request_timeout)
        results = await asyncio.gather(
            *(msg.ack_sync(timeout=wait) for msg in msgs), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        self._stats["acked"] += len(msgs) - len(failed)
        for msg, result in zip(msgs, results, strict=True):
            if not isinstance(result, BaseException):
                self._unsettled.pop(id(msg), None)
        if failed:
            raise self._link.failed(
                f"{len(failed)} of {len(msgs)} acks not confirmed: {describe(failed[0])}"
            )

    async def _dead_letter(self, msg: Msg, where: str, reason: str) -> None:
        js = await self._link.jetstream()
        reason = " ".join(reason.split())[:REASON_CHARS]  # a header value is one line
        headers = {
            DEAD_LETTER_REASON_HEADER: reason,
            DEAD_LETTER_WHERE_HEADER: where,
            "Nats-Msg-Id": f"dead:{where}",  # published again on a redelivery: dropped
        }
        try:
            await js.publish(self.settings.dead_letter_subject, msg.data, headers=headers)
        except Exception as exc:
            raise self._link.failed(f"dead-letter publish failed: {describe(exc)}") from exc
        self._stats["dead_lettered"] += 1

    async def lag(self) -> dict[str, int]:
        js = await self._link.jetstream()
        try:
            info = await js.consumer_info(self.settings.stream, self.settings.durable)
        except Exception as exc:
            raise self._link.failed(f"consumer_info failed: {describe(exc)}") from exc
        return {self._where: int(info.num_pending or 0) + int(info.num_ack_pending or 0)}
