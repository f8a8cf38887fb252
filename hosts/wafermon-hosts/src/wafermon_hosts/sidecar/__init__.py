"""The sidecar host: a node's durable spool in front of every backend the site config names.

``settings`` turns the site config's ``sidecar:`` section into ``SidecarSettings`` and builds
the backends; ``runtime`` runs the spool, the core's router and the backends; ``app.create_app``
makes the Starlette app; ``ingest`` and ``health`` hold the routes and ``openapi`` describes them.

The names below are imported on first use, so ``wafermon --help`` (which loads this package
for the ``sidecar`` command) does not pay for Starlette and Hypercorn.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Sidecar": "runtime",
    "SidecarSettings": "settings",
    "build_sidecar": "settings",
    "create_app": "app",
    "load_sidecar": "app",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
