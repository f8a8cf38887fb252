"""The sidecar host: a node's durable spool in front of every backend the site config names.

``settings`` turns the site config's ``sidecar:`` section into ``SidecarSettings`` and builds
the backends; ``runtime`` runs the spool, the core's router and the backends; ``app.create_app``
makes the Starlette app; ``ingest`` and ``health`` hold the routes and ``openapi`` describes them.

The names below are imported on first use, so ``wafermon --help`` (which loads this package
for the ``sidecar`` command) does not pay for Starlette and Hypercorn.
"""

from wafermon.plugins import lazy_exports

_EXPORTS = {
    "Sidecar": "runtime",
    "SidecarSettings": "settings",
    "build_sidecar": "settings",
    "create_app": "app",
    "load_sidecar": "app",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
