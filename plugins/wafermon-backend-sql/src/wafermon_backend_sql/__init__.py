"""wafermon-backend-sql: the managed store in SQLite (embedded default) or PostgreSQL.

``SqlStore`` implements ``wafermon.store.ManagedStore``: idempotent batch ingest keyed by
event_id, current job/subjob state derived with the core's merge rules, event queries, job
detail, retention and versioned schema migrations applied at start.

The names are imported on first use: the ``wafermon`` CLI loads this package's plugin module
at every start, and SQLAlchemy takes about a second to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Settings, SqlStore

__all__ = ["Settings", "SqlSettings", "SqlStore"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import store

        # SqlSettings: the name an early stand-in used; kept so its users keep working
        return store.Settings if name == "SqlSettings" else getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
