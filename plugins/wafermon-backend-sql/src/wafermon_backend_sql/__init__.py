"""wafermon-backend-sql: the managed store in SQLite (embedded default) or PostgreSQL.

``SqlStore`` implements ``wafermon.store.ManagedStore``: idempotent batch ingest keyed by
event_id, current job/subjob state derived with the core's merge rules, event queries, job
detail, retention and versioned schema migrations applied at start.
"""

from .store import Settings, SqlStore

SqlSettings = Settings  # the name an early stand-in used; kept so its users keep working

__all__ = ["Settings", "SqlSettings", "SqlStore"]
