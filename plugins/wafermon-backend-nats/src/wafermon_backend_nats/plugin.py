"""Hook implementations of wafermon-backend-nats (the entry point names this module)."""

from wafermon import hookimpl


@hookimpl
def register_emitters(register):
    # By name: nats-py is imported only when a site config uses the type.
    register("nats", "wafermon_backend_nats.emitter:NatsEmitter")


@hookimpl
def register_consumers(register):
    register("nats", "wafermon_backend_nats.consumer:NatsConsumer")
