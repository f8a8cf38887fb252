"""wafermon's Kafka stream: ``KafkaEmitter`` (sidecars, direct-mode SDKs) and ``KafkaConsumer``
(gateways reading the topic as one consumer group). See docs/backends/kafka.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wafermon.plugins import lazy_exports

if TYPE_CHECKING:
    from .consumer import ConsumerSettings, KafkaConsumer
    from .emitter import EmitterSettings, KafkaEmitter
    from .settings import ConnectionSettings

# Imported on first use: every wafermon command and host loads this package to find its hooks.
_EXPORTS = {
    "ConsumerSettings": "consumer",
    "KafkaConsumer": "consumer",
    "EmitterSettings": "emitter",
    "KafkaEmitter": "emitter",
    "ConnectionSettings": "settings",
}
__all__ = [
    "ConnectionSettings",
    "ConsumerSettings",
    "EmitterSettings",
    "KafkaConsumer",
    "KafkaEmitter",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
