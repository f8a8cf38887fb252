"""The plugin module the ``wafermon`` entry point names: hook implementations only.

The emitter is registered by name, so httpx is imported only when a config uses it.
"""

from wafermon import hookimpl


@hookimpl
def register_emitters(register):
    register("gateway", "wafermon_backend_gateway.emitter:GatewayEmitter")
