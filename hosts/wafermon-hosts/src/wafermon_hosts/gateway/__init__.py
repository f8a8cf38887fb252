"""The gateway host: a site's managed store, external sources and one unified view over HTTP.

``settings`` turns the site config's ``gateway:`` section into ``GatewaySettings`` and builds
the store and sources; ``runtime`` runs them; ``app.create_app`` makes the Starlette app; one
module per concern holds the routes (``ingest``, ``entities``, ``query``, ``stream``,
``health``) and ``openapi`` describes them all.

The names below are imported on first use, so ``wafermon --help`` (which loads this package
for the ``gateway`` command) does not pay for Starlette and Hypercorn.
"""

from wafermon.plugins import lazy_exports

_EXPORTS = {
    "Gateway": "runtime",
    "GatewaySettings": "settings",
    "build_gateway": "settings",
    "create_app": "app",
    "load_gateway": "app",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
