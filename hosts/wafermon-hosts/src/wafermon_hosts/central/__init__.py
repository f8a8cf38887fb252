"""The central host: many sites' gateways behind one API.

``settings`` turns the ``central:`` section into ``CentralSettings`` (the sites, timeouts,
cache); ``sites`` talks to one gateway with a hard deadline; ``cache`` keeps answers for a few
seconds; ``merge`` merges pages of several sites and holds the composite cursor; ``runtime``
runs it all; ``routes`` and ``openapi`` are the API; ``app.create_app`` makes the Starlette
app and ``cli`` the ``wafermon central`` command.

The names below are imported on first use, so ``wafermon --help`` does not pay for Starlette.
"""

from wafermon.plugins import lazy_exports

_EXPORTS = {
    "Central": "runtime",
    "CentralSettings": "settings",
    "build_central": "settings",
    "create_app": "app",
    "load_central": "app",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
