"""KafkaConsumer: one member of a consumer group reading the events topic for a gateway.

- Offsets are committed only by ``StreamBatch.commit()`` (auto-commit is off), i.e. after the
  gateway's store committed: a crash anywhere before that gives the messages to the next
  owner of the partition again, and the store drops the repeats by ``event_id``.
- ``fetch`` returns at most ``max_messages`` records; what the client holds besides is bounded
  by ``max_fetch_bytes`` (one fetch response at a time; at most ``max_partition_fetch_bytes``
  per partition), so a slow store cannot make the gateway pull the topic into memory.
- ``dead_letter`` publishes the message as it came (``acks=all``) to ``dead_letter_topic`` with
  the reason and its origin in headers; it is then committed with its batch.
- A partition moved to another member between fetch and commit makes the commit fail
  (RetryableError): the new owner reads those messages again, which the store makes harmless.
"""

from __future__ import annotations

import asyncio
import logging

import attrs
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from wafermon import (
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_WHERE_HEADER,
    ByteSize,
    FieldValueError,
    Health,
    RetryableError,
    Seconds,
    StreamBatch,
    StreamConsumer,
    StreamMessage,
    describe,
)

from .settings import ConnectionSettings, ensure_topics, started

log = logging.getLogger(__name__)

#: Dead-letter reasons are cut to this many bytes (a header, not a report).
MAX_REASON_BYTES = 16 * 1024


def _group(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not value or len(value) > 255:
        raise FieldValueError(attribute.name, "must be 1-255 characters")


@attrs.frozen(kw_only=True)
class ConsumerSettings(ConnectionSettings):
    """``config:`` of a ``type: kafka`` entry under ``gateway.streams``."""

    group: str = attrs.field(default="wafermon-gateways", validator=_group)
    #: Where a group with no committed offset starts: the oldest message kept, or new ones only.
    start_from: str = attrs.field(default="earliest")
    max_fetch_bytes: ByteSize = ByteSize(8 * 2**20)
    max_partition_fetch_bytes: ByteSize = ByteSize(2**20)
    session_timeout: Seconds = Seconds(10.0)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.start_from not in ("earliest", "latest"):
            raise FieldValueError("start_from", "must be earliest or latest")


class KafkaConsumer(StreamConsumer):
    Settings = ConsumerSettings

    def __init__(self, name: str, settings: ConsumerSettings) -> None:
        super().__init__(name, settings)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None  # for dead letters, built on first use
        self._producer_lock = asyncio.Lock()
        self.fetched = 0
        self.dead_lettered = 0
        self.commit_failures = 0

    async def start(self) -> None:
        s = self.settings
        await ensure_topics(s, [s.topic, s.dead_letter_topic])
        consumer = AIOKafkaConsumer(
            s.topic,
            **s.client_options(),
            group_id=s.group,
            enable_auto_commit=False,
            auto_offset_reset=s.start_from,
            fetch_max_bytes=s.max_fetch_bytes,
            max_partition_fetch_bytes=s.max_partition_fetch_bytes,
            session_timeout_ms=int(s.session_timeout * 1000),
            heartbeat_interval_ms=max(100, int(s.session_timeout * 1000 / 3)),
        )
        self._consumer = await started(consumer, f"cannot join group {s.group!r}")

    def _ready(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RetryableError("the Kafka consumer is not started")
        return self._consumer

    async def fetch(self, max_messages: int, timeout: float) -> StreamBatch:
        consumer = self._ready()
        try:
            found = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_messages)
        except KafkaError as exc:
            raise RetryableError(f"Kafka fetch failed: {describe(exc)}") from exc
        messages: list[StreamMessage] = []
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in found.items():
            for record in records:
                messages.append(
                    StreamMessage(
                        body=record.value or b"",
                        where=f"{tp.topic}/{tp.partition}@{record.offset}",
                        headers=dict(record.headers or ()),
                    )
                )
            if records:
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
        self.fetched += len(messages)

        async def commit() -> None:
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                self.commit_failures += 1
                raise RetryableError(f"Kafka commit failed: {describe(exc)}") from exc

        return StreamBatch(messages, on_commit=commit, on_dead_letter=self._dead_letter)

    async def _dead_letter(self, message: StreamMessage, reason: str) -> None:
        s = self.settings
        headers = [
            *((k, v) for k, v in message.headers.items() if not k.startswith("wafermon-dead")),
            (DEAD_LETTER_REASON_HEADER, reason.encode()[:MAX_REASON_BYTES]),
            (DEAD_LETTER_WHERE_HEADER, message.where.encode()),
        ]
        producer = await self._dead_letter_producer()
        try:
            # Keyed by the source partition: its dead letters stay in their original order.
            key = message.where.rpartition("@")[0].encode()
            await producer.send_and_wait(
                s.dead_letter_topic, message.body, key=key, headers=headers
            )
        except KafkaError as exc:
            raise RetryableError(f"dead-letter send failed: {describe(exc)}") from exc
        self.dead_lettered += 1

    async def _dead_letter_producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self.settings.client_options(),
                    acks="all",
                    enable_idempotence=True,
                    max_request_size=self.settings.max_partition_fetch_bytes + 64 * 1024,
                )
                self._producer = await started(producer, "cannot reach Kafka")
            return self._producer

    async def lag(self) -> dict[str, int]:
        consumer = self._ready()
        assigned = sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
        if not assigned:
            return {}
        try:
            ends = await consumer.end_offsets(assigned)
            committed = [await consumer.committed(tp) for tp in assigned]
        except KafkaError as exc:
            raise RetryableError(f"cannot read Kafka offsets: {describe(exc)}") from exc
        return {
            f"{tp.topic}/{tp.partition}": max(0, ends[tp] - (done or 0))
            for tp, done in zip(assigned, committed, strict=True)
        }

    async def health(self) -> Health:
        consumer = self._consumer
        if consumer is None:
            return Health(False, "not started")
        assigned = consumer.assignment()
        return Health(True, f"{len(assigned)} partitions assigned")

    def stats(self) -> dict[str, float]:
        return {
            "fetched": float(self.fetched),
            "dead_lettered": float(self.dead_lettered),
            "commit_failures": float(self.commit_failures),
        }

    async def close(self) -> None:
        """Leave the group without committing: what was not committed is read again."""
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()
