"""The archive as the gateway's retention: old events move to an archive instead of vanishing.

A source whose adapter says ``archives_store`` (an s3 source with an ``archive:`` section) is
the managed store's archive. Then each retention run is an archive pass, ``adapter.archive(
store)``, which deletes from the store only what it wrote and verified, and the store's own
``enforce_retention`` is not called (it would drop events the archive has not taken yet). The
unified view reads that source like any other, so archived events stay in every answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wafermon import QueryAdapter

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
