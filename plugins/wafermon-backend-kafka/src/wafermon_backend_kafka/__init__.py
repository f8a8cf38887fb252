"""wafermon's Kafka stream: ``KafkaEmitter`` (sidecars, direct-mode SDKs) and ``KafkaConsumer``
(gateways reading the topic as one consumer group). See docs/backends/kafka.md."""

from .consumer import ConsumerSettings, KafkaConsumer
from .emitter import EmitterSettings, KafkaEmitter
from .settings import ConnectionSettings

__all__ = [
    "ConnectionSettings",
    "ConsumerSettings",
    "EmitterSettings",
    "KafkaConsumer",
    "KafkaEmitter",
]
