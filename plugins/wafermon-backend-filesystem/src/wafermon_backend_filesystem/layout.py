"""The on-disk layout, shared by the emitter (which writes it) and the adapter (which reads it).

::

    {root}/{site_id}/{YYYY-MM-DD}/events.jsonl                          active file, appended to
    {root}/{site_id}/{YYYY-MM-DD}/events.{YYYYmmddTHHMMSSffffffZ}.jsonl.gz  rotated, compressed

The date is the UTC date of each event's ``time``, so an event's partition follows from its
content alone: a repeated delivery of an event always lands in the same directory.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from wafermon import PermanentError

log = logging.getLogger(__name__)

ACTIVE = "events.jsonl"
GZ = ".gz"
TMP = ".tmp"


def partition_dir(root: Path, site_id: str, day: date) -> Path:
    """The directory of one (site, day) partition, refusing any path that escapes ``root``.

    The Event model already rejects site ids like ``../x``; this is the second line of defence,
    and it also catches a symlink inside ``root`` that points elsewhere.
    """
    base = root.resolve()
    path = (base / site_id / day.isoformat()).resolve()
    if not path.is_relative_to(base):
        raise PermanentError(f"site_id {site_id!r} would write outside root {base}")
    return path


def rotated_path(pdir: Path, now: datetime) -> Path:
    """A fresh ``events.<UTC timestamp>.jsonl`` name in ``pdir`` for a file being rotated."""
    while True:
        path = pdir / f"events.{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.jsonl"
        # A coarse or stepped-back clock must never make a rotation overwrite an older file.
        if not path.exists() and not path.with_name(path.name + GZ).exists():
            return path
        now += timedelta(microseconds=1)


def is_rotated_plain(path: Path) -> bool:
    """A rotated file that was not compressed yet (``events.<ts>.jsonl``)."""
    return path.name.startswith("events.") and path.name.endswith(".jsonl") and path.name != ACTIVE


def event_files(pdir: Path) -> list[Path]:
    """Every readable event file of a partition; a plain file with a ``.gz`` twin is left out.

    The twin exists only if a crash hit rotation between writing the gz and unlinking the plain
    file; the gz is complete by then (it is renamed into place only after fsync).
    """
    compressed = sorted(pdir.glob("events*.jsonl.gz"))
    twins = {p.with_suffix("") for p in compressed}
    return compressed + [p for p in sorted(pdir.glob("events*.jsonl")) if p not in twins]


def day_overlaps(day: date, start: datetime | None, end: datetime | None) -> bool:
    """Whether the UTC day ``[day, day + 1)`` overlaps the half-open range ``[start, end)``."""
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    return (start is None or start < midnight + timedelta(days=1)) and (
        end is None or end > midnight
    )


def open_event_files(pdir: Path) -> Iterator[tuple[Path, BinaryIO]]:
    """Open each event file of a partition, even while an emitter is rotating it.

    A file listed a moment ago may have been renamed or compressed since. An open file keeps its
    content through a rename, so only files that vanish before opening need care: the partition
    is listed again and whatever has appeared is read too. Events read twice this way are
    removed by the adapter's event_id dedupe.
    """
    seen: set[Path] = set()
    for _attempt in range(3):
        vanished = False
        for path in event_files(pdir):
            if path in seen:
                continue
            seen.add(path)
            try:
                file = path.open("rb")
            except FileNotFoundError:
                vanished = True
                continue
            yield path, file
        if not vanished:
            return


def read_lines(path: Path, file: BinaryIO) -> Iterator[bytes]:
    """The lines of an open plain or gzip event file; closes it when done.

    A truncated or corrupt gzip file yields what can be read, then logs a warning: losing the
    tail of one damaged file must not make the whole query fail.
    """
    stream = gzip.GzipFile(fileobj=file, mode="rb") if path.name.endswith(GZ) else file
    try:
        yield from stream
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        log.warning("%s is truncated or corrupt, read only its readable part: %s", path, exc)
    finally:
        file.close()
