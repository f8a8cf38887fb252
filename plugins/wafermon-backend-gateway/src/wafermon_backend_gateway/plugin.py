from wafermon import hookimpl

from .emitter import GatewayEmitter


@hookimpl
def register_emitters(register):
    register("gateway", GatewayEmitter)
