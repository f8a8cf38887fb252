"""The plugin module the ``wafermon`` entry point names: hook implementations only.

One class is both: a ``type: sql`` backend stores events, the same type as a source reads them
back, and the gateway owns it as its managed store (``SqlStore`` is a ``ManagedStore``).
"""

from wafermon import hookimpl

from .store import SqlStore


@hookimpl
def register_emitters(register):
    register("sql", SqlStore)


@hookimpl
def register_query_adapters(register):
    register("sql", SqlStore)
