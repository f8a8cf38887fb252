"""Alert state in the managed store: alerts, transitions, notification attempts, silences,
API/SDK monitors, per-site watermarks and the engine's lease.

Kept out of ``store.py`` and ``schema.py`` on purpose: these tables belong to the gateway's
alert engine, which reaches them through the store's engine (``SqlAlertState(store)``), and
they are created with ``CREATE TABLE IF NOT EXISTS`` on the engine's start rather than in the
event schema's migrations (their version is ``ALERT_SCHEMA``; a future change adds a step).

Exactly-once notification across gateways sharing one store rests on two things here: the
lease row (only its holder evaluates) and the primary key of ``wafermon_alert_transitions``
(a transition ``(fingerprint, seq)`` can be inserted once; only the inserter notifies it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .dialects import writing
from .schema import Key, UTCDateTime
from .schema import entities as entities_table

ALERT_SCHEMA = 1
meta = sa.MetaData()

lease = sa.Table(
    "wafermon_alert_lease",
    meta,
    sa.Column("name", Key, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)
alerts = sa.Table(
    "wafermon_alerts",
    meta,
    sa.Column("fingerprint", Key, primary_key=True),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("site_id", sa.Text),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime),
    sa.Column("last_notified_at", UTCDateTime),
    sa.Column("silenced_by", sa.Text),
    sa.Column("inhibited", sa.Boolean, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("notified_seq", sa.Integer, nullable=False),  # transition last notified
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("wafermon_alerts_status_starts", "status", "starts_at"),
)
transitions = sa.Table(
    "wafermon_alert_transitions",
    meta,
    sa.Column("fingerprint", Key, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)
notifications = sa.Table(
    "wafermon_alert_notifications",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", Key, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("notifier", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index("wafermon_alert_notifications_fp", "fingerprint", "id"),
)
silences = sa.Table(
    "wafermon_alert_silences",
    meta,
    sa.Column("id", Key, primary_key=True),
    sa.Column("matchers", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
)
monitors = sa.Table(
    "wafermon_alert_monitors",
    meta,
    sa.Column("name", Key, primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
watermarks = sa.Table(
    "wafermon_alert_watermarks",
    meta,
    sa.Column("site_id", Key, primary_key=True),
    sa.Column("watermark", UTCDateTime, nullable=False),
)

ALERT_COLUMNS = (
    "fingerprint",
    "rule",
    "severity",
    "status",
    "summary",
    "description",
    "site_id",
    "starts_at",
    "ends_at",
    "last_notified_at",
    "silenced_by",
    "inhibited",
    "seq",
    "notified_seq",
)


class Run(NamedTuple):
    """The columns of a job or subjob the alert engine reads (``EntityState``'s names)."""

    entity_id: str
    site_id: str
    app: str
    business_key: str | None
    parent_id: str | None
    status: str
    start_time: datetime
    finished_at: datetime | None
    updated_at: datetime
    duration_s: float | None
    mem_max_mb: float | None


_RUN_TIMES = ("start_time", "finished_at", "updated_at")


def _utc_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text + "+00:00")


def _alert(row: Any) -> dict[str, Any]:
    out = {c: getattr(row, c) for c in ALERT_COLUMNS}
    out["labels"] = orjson.loads(row.labels)
    return out


class SqlAlertState:
    """The alert engine's tables over a started ``SqlStore`` (its engine and write lock)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @property
    def _dialect(self) -> Any:
        return self.store.dialect

    async def start(self) -> None:
        async with writing(self._dialect) as conn:
            await conn.run_sync(meta.create_all, checkfirst=True)

    async def _read(self, stmt: Any) -> list[Any]:
        async with self._dialect.engine.connect() as conn:
            return list(await conn.execute(stmt))

    async def runs(self, entity_type: str, since: datetime) -> list[Run]:
        """Every job (or subjob) that started at or after ``since``: one indexed query of the
        columns the engine reads. On SQLite the times are read as text and parsed here, which
        is several times cheaper than the driver's datetime conversion."""
        e = entities_table
        sqlite = self._dialect.name == "sqlite"
        columns = [
            sa.type_coerce(e.c[name], sa.Text) if sqlite and name in _RUN_TIMES else e.c[name]
            for name in Run._fields
        ]
        stmt = sa.select(*columns).where(
            (e.c.entity_type == entity_type) & (e.c.start_time >= since)
        )
        rows = await self._read(stmt)
        if not sqlite:
            return [Run._make(row) for row in rows]
        parse = _utc_text
        return [
            Run(a, b, c, d, e_, f, parse(g), parse(h), parse(i), j, k)
            for a, b, c, d, e_, f, g, h, i, j, k in rows
        ]

    # -- lease ------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``until``; True if held."""
        ins = self._dialect.insert(lease).values(name=name, holder=holder, expires_at=until)
        ins = ins.on_conflict_do_update(
            index_elements=[lease.c.name],
            set_={"holder": ins.excluded.holder, "expires_at": ins.excluded.expires_at},
            where=(lease.c.holder == holder) | (lease.c.expires_at < now),
        )
        async with writing(self._dialect) as conn:
            await conn.execute(ins)
            row = (await conn.execute(sa.select(lease.c.holder).where(lease.c.name == name))).one()
        return row.holder == holder

    async def release_lease(self, name: str, holder: str) -> None:
        async with writing(self._dialect) as conn:
            await conn.execute(
                sa.delete(lease).where((lease.c.name == name) & (lease.c.holder == holder))
            )

    # -- alerts -----------------------------------------------------------------------------

    async def active_alerts(self) -> dict[str, dict[str, Any]]:
        rows = await self._read(sa.select(alerts).where(alerts.c.status == "firing"))
        return {r.fingerprint: _alert(r) for r in rows}

    async def transition(self, alert: dict[str, Any], at: datetime) -> bool:
        """Write ``alert`` (its new ``status`` and ``seq``) and the transition row.

        False (and nothing written) if another gateway already wrote this transition.
        """
        row = {c: alert[c] for c in ALERT_COLUMNS}
        row["labels"] = orjson.dumps(alert["labels"], option=orjson.OPT_SORT_KEYS).decode()
        row["updated_at"] = at
        try:
            async with writing(self._dialect) as conn:
                await conn.execute(
                    sa.insert(transitions).values(
                        fingerprint=alert["fingerprint"],
                        seq=alert["seq"],
                        status=alert["status"],
                        at=at,
                    )
                )
                ins = self._dialect.insert(alerts).values(**row)
                await conn.execute(
                    ins.on_conflict_do_update(
                        index_elements=[alerts.c.fingerprint],
                        set_={c: ins.excluded[c] for c in row if c != "fingerprint"},
                    )
                )
        except IntegrityError:
            return False
        return True

    async def update_flags(
        self, fingerprint: str, silenced_by: str | None, inhibited: bool
    ) -> None:
        async with writing(self._dialect) as conn:
            await conn.execute(
                sa.update(alerts)
                .where(alerts.c.fingerprint == fingerprint)
                .values(silenced_by=silenced_by, inhibited=inhibited)
            )

    async def claim_notification(
        self, fingerprint: str, seq: int, previous: datetime | None, now: datetime
    ) -> bool:
        """Mark ``(fingerprint, seq)`` notified at ``now`` if nobody did since ``previous``."""
        last = alerts.c.last_notified_at
        same = last.is_(None) if previous is None else last == previous
        async with writing(self._dialect) as conn:
            done = await conn.execute(
                sa.update(alerts)
                .where((alerts.c.fingerprint == fingerprint) & (alerts.c.seq == seq) & same)
                .values(last_notified_at=now, notified_seq=seq)
            )
        return done.rowcount == 1

    async def record_attempt(
        self,
        fingerprint: str,
        seq: int,
        notifier: str,
        at: datetime,
        attempt: int,
        ok: bool,
        error: str | None,
    ) -> None:
        async with writing(self._dialect) as conn:
            await conn.execute(
                sa.insert(notifications).values(
                    fingerprint=fingerprint,
                    seq=seq,
                    notifier=notifier,
                    at=at,
                    attempt=attempt,
                    ok=ok,
                    error=error,
                )
            )

    async def list_alerts(
        self,
        *,
        status: str | None,
        filters: dict[str, str],
        since: datetime | None,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        """Firing first, then newest first; ``offset`` pages (the API wraps it in a cursor)."""
        stmt = sa.select(alerts)
        if status is not None:
            stmt = stmt.where(alerts.c.status == status)
        for column, value in filters.items():
            stmt = stmt.where(alerts.c[column] == value)
        if since is not None:
            stmt = stmt.where(sa.or_(alerts.c.ends_at.is_(None), alerts.c.ends_at >= since))
        firing_first = sa.case((alerts.c.status == "firing", 0), else_=1)
        stmt = stmt.order_by(firing_first, alerts.c.starts_at.desc(), alerts.c.fingerprint)
        rows = await self._read(stmt.limit(limit).offset(offset))
        found = [_alert(r) for r in rows]
        await self._attach_notifications(found)
        return found

    async def _attach_notifications(self, found: list[dict[str, Any]], per_alert: int = 20) -> None:
        if not found:
            return
        stmt = (
            sa.select(notifications)
            .where(notifications.c.fingerprint.in_([a["fingerprint"] for a in found]))
            .order_by(notifications.c.id.desc())
        )
        by_fp: dict[str, list[dict[str, Any]]] = {a["fingerprint"]: [] for a in found}
        for r in await self._read(stmt):
            kept = by_fp[r.fingerprint]
            if len(kept) < per_alert:
                kept.append(
                    {
                        "notifier": r.notifier,
                        "at": r.at,
                        "attempt": r.attempt,
                        "ok": r.ok,
                        "error": r.error,
                    }
                )
        for a in found:
            a["notifications"] = list(reversed(by_fp[a["fingerprint"]]))

    async def get_alert(self, fingerprint: str) -> dict[str, Any] | None:
        rows = await self._read(sa.select(alerts).where(alerts.c.fingerprint == fingerprint))
        if not rows:
            return None
        found = _alert(rows[0])
        await self._attach_notifications([found], per_alert=1000)
        steps = await self._read(
            sa.select(transitions)
            .where(transitions.c.fingerprint == fingerprint)
            .order_by(transitions.c.seq)
        )
        found["transitions"] = [{"status": s.status, "at": s.at} for s in steps]
        return found

    # -- silences ---------------------------------------------------------------------------

    async def add_silence(self, silence: dict[str, Any]) -> None:
        row = dict(silence, matchers=orjson.dumps(silence["matchers"]).decode())
        async with writing(self._dialect) as conn:
            await conn.execute(sa.insert(silences).values(**row))

    async def silences(self) -> list[dict[str, Any]]:
        rows = await self._read(sa.select(silences).order_by(silences.c.starts_at.desc()))
        return [
            {
                "id": r.id,
                "matchers": orjson.loads(r.matchers),
                "author": r.author,
                "reason": r.reason,
                "starts_at": r.starts_at,
                "ends_at": r.ends_at,
            }
            for r in rows
        ]

    async def expire_silence(self, silence_id: str, now: datetime) -> bool:
        async with writing(self._dialect) as conn:
            done = await conn.execute(
                sa.update(silences)
                .where((silences.c.id == silence_id) & (silences.c.ends_at > now))
                .values(ends_at=now)
            )
            if done.rowcount:
                return True
            found = await conn.execute(sa.select(silences.c.id).where(silences.c.id == silence_id))
            return found.first() is not None

    # -- monitors (API and SDK) -------------------------------------------------------------

    async def monitors(self) -> list[tuple[dict[str, Any], str]]:
        rows = await self._read(sa.select(monitors).order_by(monitors.c.name))
        return [(orjson.loads(r.spec), r.source) for r in rows]

    async def put_monitor(
        self, name: str, spec: dict[str, Any], source: str, now: datetime
    ) -> bool:
        """Upsert; True if the monitor is new."""
        async with writing(self._dialect) as conn:
            existed = (
                await conn.execute(sa.select(monitors.c.name).where(monitors.c.name == name))
            ).first()
            ins = self._dialect.insert(monitors).values(
                name=name, spec=orjson.dumps(spec).decode(), source=source, updated_at=now
            )
            await conn.execute(
                ins.on_conflict_do_update(
                    index_elements=[monitors.c.name],
                    set_={
                        "spec": ins.excluded.spec,
                        "source": ins.excluded.source,
                        "updated_at": ins.excluded.updated_at,
                    },
                )
            )
        return existed is None

    async def delete_monitor(self, name: str) -> bool:
        async with writing(self._dialect) as conn:
            done = await conn.execute(sa.delete(monitors).where(monitors.c.name == name))
        return done.rowcount == 1

    # -- watermarks -------------------------------------------------------------------------

    async def merge_watermarks(self, seen: Iterable[tuple[str, datetime]]) -> dict[str, datetime]:
        """Raise each site's watermark to what this gateway saw; returns every site's."""
        seen = list(seen)
        if seen:
            async with writing(self._dialect) as conn:
                for site_id, mark in seen:
                    ins = self._dialect.insert(watermarks).values(site_id=site_id, watermark=mark)
                    await conn.execute(
                        ins.on_conflict_do_update(
                            index_elements=[watermarks.c.site_id],
                            set_={"watermark": ins.excluded.watermark},
                            where=watermarks.c.watermark < ins.excluded.watermark,
                        )
                    )
        rows = await self._read(sa.select(watermarks))
        return {r.site_id: r.watermark for r in rows}


def alert_state(store: Any) -> SqlAlertState | None:
    """The ``alert_state`` hook's answer for a SQL store (None for any other store)."""
    from .store import SqlStore

    return SqlAlertState(store) if isinstance(store, SqlStore) else None
