"""wafermon host processes: thin Starlette apps served by Hypercorn.

``common`` holds what every host shares (logs, metrics, auth, errors, limits, tracing,
serving); each host (``gateway`` today; ``sidecar`` and ``central`` later) is a subpackage
with its settings, its app factory and its routes. The ``wafermon`` CLI gains one command per
host through ``wafermon_hosts.plugin``.
"""

__version__ = "0.1.0"
