"""wafermon-backend-gateway: forward event batches to a site gateway over HTTP.

backends:
  - {name: site-gateway, type: gateway,
     config: {url: "http://127.0.0.1:18000", token: "${WAFERMON_INGEST_TOKEN}"}}

The names are imported on first use, so the ``wafermon`` CLI does not import httpx at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .emitter import GatewayEmitter, GatewaySettings

__all__ = ["GatewayEmitter", "GatewaySettings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import emitter

        return getattr(emitter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
