"""Tables, column types and the versioned migrations of the SQL store.

Why SQLAlchemy Core and not the ORM: the store's work is set-oriented (batch inserts, one
upsert per chunk whose SET clause mirrors ``EntityState.merge``, keyset pages), and its rows map
to the core's attrs classes (``Event``, ``EntityState``), not to ORM objects. An identity map and
unit of work would add per-row overhead and hide the exact SQL the merge and the partitioned
PostgreSQL table depend on; Core keeps the SQL explicit and still renders one definition for
both SQLite and PostgreSQL.

Migrations are an ordered list of ``(version, name, step)``; ``migrate`` applies the missing
ones in one transaction (PostgreSQL and SQLite both have transactional DDL) and records each in
``wafermon_schema_migrations``. A step creates tables with ``CreateTable`` (which emits no
indexes) and exactly the indexes of its version, so an old step never creates what a newer one
adds. Rule for future steps: a step that changes an existing table must not edit the Table
below in a way that changes what an older step creates; freeze the old shape in that step.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import TypeDecorator, UserDefinedType

# -- column types -------------------------------------------------------------------------------


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out: TIMESTAMPTZ on PostgreSQL, sortable text on SQLite.

    SQLite stores ``YYYY-MM-DD HH:MM:SS.ffffff`` (always six fraction digits), so comparing and
    sorting the text is comparing the instants.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _PgJson(UserDefinedType):
    """PostgreSQL ``json`` passed as text both ways: the store (de)serialises with orjson.

    ``json`` rather than ``jsonb``: it keeps the wire text exactly, accepts ``\\u0000`` (jsonb
    refuses it) and is cheaper to write; nothing filters inside these documents.
    """

    cache_ok = True

    def get_col_spec(self, **_kw: object) -> str:
        return "JSON"


JsonText = sa.Text().with_variant(_PgJson(), "postgresql")
#: Identifiers compared and sorted bytewise on both engines (PostgreSQL's default collation
#: may ignore punctuation, which would break keyset cursors and the merge's stamp comparison).
Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

metadata = sa.MetaData()

migrations_table = sa.Table(
    "wafermon_schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

# Append-only raw events. On PostgreSQL range-partitioned by day on ``time``; a partitioned
# table's unique constraints must include the partition key, so uniqueness by event_id alone
# is enforced by ``event_ids`` there (see below). On SQLite a unique index on event_id is the gate.
events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("site_id", Key, nullable=False),
    sa.Column("app", Key, nullable=False),
    sa.Column("entity_type", sa.Text, nullable=False),
    sa.Column("entity_id", Key, nullable=False),
    sa.Column("parent_id", Key),
    sa.Column("business_key", Key),
    sa.Column("sub_key", Key),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("body", JsonText, nullable=False),  # the full wire JSON: returned exactly
    postgresql_partition_by="RANGE (time)",
)

# PostgreSQL only: the idempotency gate. One small unpartitioned row per stored event; an
# INSERT ... ON CONFLICT DO NOTHING here decides "new or duplicate" by event_id alone, whatever
# time a duplicate carries. Retention deletes its rows together with the partitions they match.
event_ids = sa.Table(
    "event_ids",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("time", UTCDateTime, nullable=False),
)

# Current state of every job and subjob: the fields of wafermon.store.EntityState. Keyed by
# entity_id alone, as the core's fold is and as GET /v1/jobs/{id} looks rows up. Stamps are
# "rank|YYYY-MM-DDTHH:MM:SS.ffffff|event_id" text: their bytewise order is the tuple order the
# merge compares, so SQL can compare them (see store.merge_set).
entities = sa.Table(
    "entities",
    metadata,
    sa.Column("entity_id", Key, primary_key=True),
    sa.Column("entity_type", sa.Text, nullable=False),
    sa.Column("site_id", Key, nullable=False),
    sa.Column("app", Key, nullable=False),
    sa.Column("app_version", Key),
    sa.Column("parent_id", Key),
    sa.Column("business_key", Key),
    sa.Column("sub_key", Key),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("start_time", UTCDateTime, nullable=False),  # coalesce(started_at, first_seen_at)
    sa.Column("duration_s", sa.Double),
    sa.Column("cpu_user_s", sa.Double),
    sa.Column("cpu_system_s", sa.Double),
    sa.Column("mem_max_mb", sa.Double),
    sa.Column("progress", sa.Double),
    sa.Column("error", JsonText),
    sa.Column("metadata", JsonText, nullable=False),
    sa.Column("event_count", sa.BigInteger, nullable=False),
    sa.Column("identity_stamp", Key),
    sa.Column("metrics_stamp", Key),
    sa.Column("metadata_stamp", Key),
    sa.Column("progress_stamp", Key),
    sa.Column("error_stamp", Key),
)

# Applications seen, one row per (name, version); version '' when events carry none.
apps = sa.Table(
    "apps",
    metadata,
    sa.Column("name", Key, primary_key=True),
    sa.Column("version", Key, primary_key=True),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
)

# -- indexes, by the migration that creates them --------------------------------------------------
E, N = events.c, entities.c
V1_INDEXES = [
    sa.Index("ix_events_time", E.time, E.event_id),  # Query order and retention on SQLite
    sa.Index("ix_events_entity", E.entity_id, E.time, E.event_id),  # job detail
    sa.Index("ix_event_ids_time", event_ids.c.time),  # gate retention (PostgreSQL)
    sa.Index("ix_entities_type_start", N.entity_type, N.start_time, N.entity_id),
    sa.Index("ix_entities_parent", N.parent_id, N.start_time, N.entity_id),
]
SQLITE_GATE = sa.Index("ux_events_event_id", E.event_id, unique=True)
# Filters of GET /v1/jobs with the default sort; a btree serves both sort directions. No
# site_id index: a gateway's store holds one site, so that filter matches (nearly) every row
# and the start-time index serves it; each index costs a write per entity update.
V2_INDEXES = [
    sa.Index("ix_entities_type_status", N.entity_type, N.status, N.start_time, N.entity_id),
    sa.Index("ix_entities_type_app", N.entity_type, N.app, N.start_time, N.entity_id),
    sa.Index("ix_entities_type_updated", N.entity_type, N.updated_at, N.entity_id),
    sa.Index("ix_entities_business_key", N.business_key, N.start_time, N.entity_id),
    sa.Index("ix_entities_sub_key", N.sub_key, N.start_time, N.entity_id),
    sa.Index("ix_events_business_key", E.business_key, E.time, E.event_id),
]

# -- migrations -----------------------------------------------------------------------------------


def _v1_base(conn: sa.Connection) -> None:
    """Events, the idempotency gate, entities and their basic indexes."""
    pg = conn.dialect.name == "postgresql"
    conn.execute(CreateTable(events))
    if pg:
        # Rows whose day has no partition land here, so no insert is ever refused.
        conn.exec_driver_sql("CREATE TABLE events_default PARTITION OF events DEFAULT")
        conn.execute(CreateTable(event_ids))
    else:
        conn.execute(CreateIndex(SQLITE_GATE))
    conn.execute(CreateTable(entities))
    for index in V1_INDEXES:
        if pg or index.table is not event_ids:
            conn.execute(CreateIndex(index))


def _v2_filters_and_apps(conn: sa.Connection) -> None:
    """Indexes for the entity filters, and the apps table backfilled from entities."""
    for index in V2_INDEXES:
        conn.execute(CreateIndex(index))
    conn.execute(CreateTable(apps))
    version = sa.func.coalesce(N.app_version, "")
    conn.execute(
        apps.insert().from_select(
            ["name", "version", "first_seen", "last_seen"],
            sa.select(
                N.app, version, sa.func.min(N.first_seen_at), sa.func.max(N.updated_at)
            ).group_by(N.app, version),
        )
    )


MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "base schema", _v1_base),
    (2, "entity filter indexes, apps table", _v2_filters_and_apps),
]
LATEST = MIGRATIONS[-1][0]
_MIGRATION_LOCK = 0x7761_6665_7201  # pg_advisory_xact_lock key: one migrator at a time


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer wafermon-backend-sql than this one."""


def applied_versions(conn: sa.Connection) -> list[int]:
    if not sa.inspect(conn).has_table(migrations_table.name):
        return []
    return sorted(conn.scalars(sa.select(migrations_table.c.version)))


def migrate(conn: sa.Connection, upto: int = LATEST) -> list[int]:
    """Apply the missing migrations up to ``upto`` in the caller's transaction; returns them.

    On PostgreSQL an advisory lock makes concurrent starts (several gateways) wait for each
    other; on SQLite the caller's BEGIN IMMEDIATE does the same.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    done = applied_versions(conn)
    if done and done[-1] > LATEST:
        raise SchemaTooNew(
            f"database schema is at version {done[-1]} but this wafermon-backend-sql knows "
            f"versions up to {LATEST}: upgrade the package"
        )
    migrations_table.create(conn, checkfirst=True)
    applied = []
    for version, name, step in MIGRATIONS:
        if version in done or version > upto:
            continue
        step(conn)
        conn.execute(
            migrations_table.insert().values(
                version=version, name=name, applied_at=datetime.now(UTC)
            )
        )
        applied.append(version)
    return applied
