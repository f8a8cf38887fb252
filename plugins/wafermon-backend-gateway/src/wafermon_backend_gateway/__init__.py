"""wafermon-backend-gateway: forward event batches to a site gateway over HTTP.

backends:
  - {name: site-gateway, type: gateway,
     config: {url: "http://127.0.0.1:18000", token: "${WAFERMON_INGEST_TOKEN}"}}
"""

from .emitter import GatewayEmitter, GatewaySettings

__all__ = ["GatewayEmitter", "GatewaySettings"]
