"""The archive as the gateway's retention: old events move to an archive instead of vanishing.

A source whose adapter says ``archives_store`` (an s3 source with an ``archive:`` section) is
the managed store's archive. Then each retention run is an archive pass, ``adapter.archive(
store)``, which deletes from the store only what it wrote and verified, and the store's own
``enforce_retention`` is not called (it would drop events the archive has not taken yet). The
unified view reads that source like any other, and job detail adds the job's archived events,
so archived events stay in every answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from wafermon import Query, QueryAdapter
from wafermon.store import JobDetail

from ..common.logs import get_logger

log = get_logger("wafermon_hosts.gateway")


def archive_source(sources: Mapping[str, QueryAdapter]) -> str | None:
    """The name of the source that archives the store, or None."""
    names = [name for name, adapter in sources.items() if getattr(adapter, "archives_store", False)]
    if len(names) > 1:
        log.warning("several sources archive the store; only the first does", sources=names)
    return names[0] if names else None


async def retain(gw: Any) -> int:
    """One retention run: an archive pass when there is an archive, else the store's own."""
    if gw.archive_source is None:
        return await gw.store.enforce_retention()
    adapter = await gw.sources[gw.archive_source].ready()
    return await adapter.archive(gw.store)


async def with_archived_events(gw: Any, detail: JobDetail, limit: int) -> JobDetail:
    """``detail`` with the job's archived events too: oldest first, one copy per event_id.

    The archive is asked only for the job's own time span (from its entity row), so a job
    detail never scans years of archive. If the archive cannot answer in the source timeout,
    the store's events are answered alone and the failure is logged.
    """
    if gw.archive_source is None:
        return detail
    job = detail.job
    span = Query(
        entity_id=job.entity_id,
        start=job.first_seen_at,
        end=job.updated_at + timedelta(microseconds=1),
        limit=limit,
    )
    try:
        adapter = await gw.sources[gw.archive_source].ready()
        async with asyncio.timeout(gw.settings.source_timeout):
            archived = (await adapter.query(span)).events
    except Exception as exc:  # noqa: BLE001 - the store's part still answers
        log.warning(
            "archive did not answer for job detail", source=gw.archive_source, error=str(exc)
        )
        return detail
    merged = {e.event_id: e for e in [*archived, *detail.events]}
    events = sorted(merged.values(), key=lambda e: e.sort_key)[:limit]
    return attrs.evolve(detail, events=events)
