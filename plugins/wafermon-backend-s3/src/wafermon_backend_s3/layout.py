"""Object keys: written by the emitter and the archiver, read by the adapter and the compactor.

::

    {prefix}/site={site_id}/date={YYYY-MM-DD}/hour={HH}/events-{digest}.jsonl.gz   emitter
    {prefix}/site={site_id}/date={YYYY-MM-DD}/hour={HH}/events-{digest}.parquet    emitter
    {prefix}/site={site_id}/date={YYYY-MM-DD}/archive-{digest}.parquet             archive
    {prefix}/site={site_id}/date={YYYY-MM-DD}/archive-{digest}.manifest.json       its manifest
    {prefix}/_wafermon/pending/{digest}.json       archiver: object written, hot rows not yet gone
    {prefix}/_wafermon/compact/{digest}.json       compactor: merged object, inputs not yet gone
    {prefix}/_wafermon/quarantine/{original key}   objects that failed verification

The partition (site, UTC date and hour of ``time``) follows from the event, so every copy of an
event lands in one date partition and readers deduplicate per date. ``digest`` is a hash of the
sorted event ids an object holds: the same events always make the same key, so a retried upload
overwrites instead of adding a copy. An archive object counts only once its manifest exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

JSONL_GZ = ".jsonl.gz"
PARQUET = ".parquet"
MANIFEST = ".manifest.json"
ARCHIVE = "archive-"
EMITTED = "events-"
CONTROL = "_wafermon"
DAY = timedelta(days=1)


def ids_digest(event_ids: Iterable[UUID]) -> str:
    """sha256 over the sorted ids (16 bytes each): the same set gives the same digest."""
    # Sorting the 16-byte forms is the UUID order, without UUID.__lt__ per comparison.
    return hashlib.sha256(b"".join(sorted(event_id.bytes for event_id in event_ids))).hexdigest()


def site_prefix(prefix: str, site_id: str) -> str:
    return f"{prefix}/site={site_id}/"


def date_prefix(prefix: str, site_id: str, day: date) -> str:
    return f"{prefix}/site={site_id}/date={day.isoformat()}/"


def emitted_key(prefix: str, site_id: str, hour: datetime, digest: str, ext: str) -> str:
    return f"{date_prefix(prefix, site_id, hour.date())}hour={hour:%H}/{EMITTED}{digest[:32]}{ext}"


def archive_key(prefix: str, site_id: str, day: date, digest: str) -> str:
    return f"{date_prefix(prefix, site_id, day)}{ARCHIVE}{digest[:32]}{PARQUET}"


def manifest_key(object_key: str) -> str:
    return object_key.removesuffix(PARQUET) + MANIFEST


def object_of_manifest(key: str) -> str:
    return key.removesuffix(MANIFEST) + PARQUET


def control_key(prefix: str, kind: str, digest: str) -> str:
    return f"{prefix}/{CONTROL}/{kind}/{digest[:32]}.json"


def quarantine_key(prefix: str, key: str) -> str:
    return f"{prefix}/{CONTROL}/quarantine/{key.removeprefix(prefix + '/')}"


def parse_site(common_prefix: str, prefix: str) -> str | None:
    """``site_id`` of a ``{prefix}/site=X/`` listing entry, or None for anything else."""
    name = common_prefix.removeprefix(prefix + "/").rstrip("/")
    return name.removeprefix("site=") if name.startswith("site=") and "/" not in name else None


def parse_date(common_prefix: str) -> date | None:
    """The day of a ``.../date=YYYY-MM-DD/`` listing entry; None for a stray name."""
    name = common_prefix.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith("date="):
        return None
    try:
        day = date.fromisoformat(name[5:])
    except ValueError:
        return None
    return day if day.isoformat() == name[5:] else None


def parse_hour(key: str) -> int | None:
    """The hour of an emitter key (``.../hour=HH/...``), None for archive objects."""
    for part in key.split("/"):
        if part.startswith("hour=") and len(part) == 7 and part[5:].isdigit():
            return int(part[5:])
    return None


def is_data(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return name.startswith((ARCHIVE, EMITTED)) and name.endswith((JSONL_GZ, PARQUET))


def is_archive(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(ARCHIVE)


def day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def overlaps(
    start: datetime, end: datetime, q_start: datetime | None, q_end: datetime | None
) -> bool:
    """Whether ``[start, end)`` meets the query's ``[q_start, q_end)``."""
    return (q_start is None or q_start < end) and (q_end is None or q_end > start)
