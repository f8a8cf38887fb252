"""KafkaEmitter: each batch into one topic, keyed so one job's events stay in order.

Records: the batch's NDJSON lines grouped by key ``<site_id>/<root job id>`` (a subjob's job is
its ``parent_id``), one record per key holding those lines in batch order (split when a group
passes ``max_record_bytes``). Kafka keeps a key on one partition, so one job's events are read
in order by one gateway, while different jobs spread over every partition. One topic with the
site in the key, not a topic per site: a gateway group reads one topic however many sites
there are, and adding a site needs no topic (docs/scale-out.md).

Delivery: an idempotent producer with ``acks=all`` (the broker's in-sync replicas have it), so
a retried send is not written twice by the producer; ``emit`` returns only when every record
of the batch was acknowledged. Any failed send raises RetryableError (the router sends the
batch again; the gateways drop repeats by ``event_id``) and replaces the producer: after a
failure its idempotence state (producer id, sequence numbers) may be unusable, which is what
silently drops everything in clients that keep it. A line larger than ``max_record_bytes`` can
never be sent: PermanentError naming just those events, after the rest were acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import attrs
import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from wafermon import (
    ByteSize,
    Emitter,
    Event,
    FieldValueError,
    Health,
    PermanentError,
    RetryableError,
    describe,
    ndjson_of,
)

from .settings import ConnectionSettings, ensure_topics, started

log = logging.getLogger(__name__)

COMPRESSIONS = ("zstd", "gzip", "none")
CONTENT_TYPE = b"application/x-ndjson"


def _compression(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in COMPRESSIONS:
        raise FieldValueError(attribute.name, f"must be one of {', '.join(COMPRESSIONS)}")


def _record_size(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if not 1024 <= value <= 64 * 2**20:
        raise FieldValueError(attribute.name, "must be between 1 KiB and 64 MiB")


@attrs.frozen(kw_only=True)
class EmitterSettings(ConnectionSettings):
    """``config:`` of a ``type: kafka`` backend."""

    compression: str = attrs.field(default="zstd", validator=_compression)
    #: Records are at most this big before compression; stay below the broker's
    #: message.max.bytes (1 MiB by default).
    max_record_bytes: ByteSize = attrs.field(default=ByteSize(900 * 1024), validator=_record_size)
    linger_ms: int = 5


class _KeyEntity(msgspec.Struct):
    id: str
    parent_id: str | None = None


class _KeyFields(msgspec.Struct):
    """The few fields of a wire event the record key needs (the rest is skipped unread)."""

    event_id: str
    site_id: str
    entity: _KeyEntity


_key_decoder = msgspec.json.Decoder(_KeyFields)


def group_lines(ndjson: bytes, max_bytes: int) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """(key, record body) pairs in batch order, and the event ids of lines too big to send."""
    groups: dict[bytes, list[list[bytes]]] = {}
    sizes: dict[bytes, int] = {}
    too_big: list[str] = []
    for line in ndjson.splitlines():
        if not line.strip():
            continue
        fields = _key_decoder.decode(line)
        if len(line) + 1 > max_bytes:
            too_big.append(fields.event_id)
            continue
        key = f"{fields.site_id}/{fields.entity.parent_id or fields.entity.id}".encode()
        chunks = groups.setdefault(key, [[]])
        if sizes.get(key, 0) + len(line) + 1 > max_bytes:
            chunks.append([])
            sizes[key] = 0
        chunks[-1].append(line)
        sizes[key] = sizes.get(key, 0) + len(line) + 1
    records = [
        (key, b"".join(line + b"\n" for line in chunk))
        for key, chunks in groups.items()
        for chunk in chunks
    ]
    return records, too_big


class KafkaEmitter(Emitter):
    Settings = EmitterSettings

    def __init__(self, name: str, settings: EmitterSettings) -> None:
        super().__init__(name, settings)
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self.recreated = 0  # producers replaced after a failure (stats)
        self.records_sent = 0
        self._closing: set[asyncio.Task] = set()  # producers being stopped after a cancel

    async def start(self) -> None:
        s = self.settings
        await ensure_topics(s, [s.topic, s.dead_letter_topic])
        await self._ready()

    async def _ready(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                s = self.settings
                producer = AIOKafkaProducer(
                    **s.client_options(),
                    acks="all",
                    enable_idempotence=True,
                    compression_type=None if s.compression == "none" else s.compression,
                    linger_ms=s.linger_ms,
                    max_request_size=max(s.max_record_bytes + 64 * 1024, 1024 * 1024),
                    max_batch_size=256 * 1024,
                )
                self._producer = await started(producer, "cannot reach Kafka")
            return self._producer

    async def _replace(self, producer: AIOKafkaProducer) -> None:
        """Drop a producer after a failure; the next emit builds a fresh one."""
        async with self._lock:
            if self._producer is producer:
                self._producer = None
                self.recreated += 1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), self.settings.request_timeout)

    async def emit(self, batch: Sequence[Event]) -> None:
        s = self.settings
        records, too_big = group_lines(ndjson_of(batch), s.max_record_bytes)
        producer = await self._ready()
        futures: list[asyncio.Future] = []
        try:
            # aiokafka's idempotent producer keeps retrying while the broker is away; the batch
            # must fail (retryably) instead, so the router's backoff and breaker see it.
            async with asyncio.timeout(s.request_timeout):
                for key, value in records:
                    headers = [("content-type", CONTENT_TYPE)]
                    futures.append(await producer.send(s.topic, value, key=key, headers=headers))
                results = await asyncio.gather(*futures, return_exceptions=True)
        except TimeoutError:
            await self._replace(producer)
            raise RetryableError(
                f"Kafka did not acknowledge the batch within {s.request_timeout:g}s"
            ) from None
        except asyncio.CancelledError:
            # A timeout in the caller: the batch counts as not sent and comes again. Sends still
            # in flight may land too (repeats the store drops); the producer is replaced.
            task = asyncio.get_running_loop().create_task(self._replace(producer))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            raise
        except KafkaError as exc:
            await self._replace(producer)
            raise RetryableError(f"Kafka send failed: {describe(exc)}") from exc
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self._replace(producer)
            raise RetryableError(
                f"Kafka did not acknowledge {len(failed)} of {len(results)} records: "
                f"{describe(failed[0])}"
            )
        self.records_sent += len(records)
        if too_big:
            raise PermanentError(
                f"event JSON larger than max_record_bytes ({s.max_record_bytes} bytes)", too_big
            )

    async def health(self) -> Health:
        producer = self._producer
        if producer is None:
            return Health(False, "no producer (not started, or replaced after a failure)")
        ready = producer.client.cluster.brokers()
        return Health(bool(ready), "" if ready else "no broker known to the producer")

    def stats(self) -> dict[str, float]:
        return {"records_sent": float(self.records_sent), "producers_recreated": self.recreated}

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()  # flushes what is pending
