"""The plugin module the ``wafermon`` entry point names: hook implementations only.

One class is both: a ``type: sql`` backend stores events, the same type as a source reads them
back, and the gateway owns it as its managed store (``SqlStore`` is a ``ManagedStore``).

SQLAlchemy takes about a second to import, so the class is registered by name and imported
only when a site config uses ``type: sql``.
"""

from wafermon import hookimpl

SQL_STORE = "wafermon_backend_sql.store:SqlStore"


@hookimpl
def register_emitters(register):
    register("sql", SQL_STORE)


@hookimpl
def register_query_adapters(register):
    register("sql", SQL_STORE)


@hookimpl(optionalhook=True)
def alert_state(store):
    """The gateway alert engine's tables in this store (see wafermon_backend_sql.alerts)."""
    from .alerts import alert_state as state

    return state(store)
