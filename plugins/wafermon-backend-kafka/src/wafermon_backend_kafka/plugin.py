"""The plugin module the ``wafermon`` entry point names: hook implementations only."""

from wafermon import hookimpl


@hookimpl
def register_emitters(register):
    # Imported on first use: aiokafka costs start-up time to hosts not using Kafka.
    register("kafka", "wafermon_backend_kafka.emitter:KafkaEmitter")


@hookimpl
def register_consumers(register):
    register("kafka", "wafermon_backend_kafka.consumer:KafkaConsumer")
