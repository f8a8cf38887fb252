"""The on-disk layout, shared by the emitter (which writes it) and the adapter (which reads it).

``{root}/{site_id}/{YYYY-MM-DD}/events.jsonl`` is a partition's active file; rotated files
beside it are ``events.{YYYYmmddTHHMMSSffffffZ}.jsonl.gz``. With ``format: json`` or ``csv`` the
suffix is ``.json`` or ``.csv`` instead (see ``formats``). The date is the UTC date of the
event's ``time``, so the partition follows from the event: all copies of an event share one.
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from wafermon import PermanentError

from .formats import SUFFIXES

log = logging.getLogger(__name__)

ACTIVE = "events.jsonl"


def active_name(suffix: str = ".jsonl") -> str:
    """The active file's name for a format's suffix."""
    return "events" + suffix


GZ = ".gz"
TMP = ".tmp"


def partition_dir(root: Path, site_id: str, day: date) -> Path:
    """The directory of one (site, day) partition, refusing any path that escapes ``root``.

    Event already rejects site ids like ``../x``; this also catches a symlink pointing out.
    """
    base = root.resolve()
    path = (base / site_id / day.isoformat()).resolve()
    if not path.is_relative_to(base):
        raise PermanentError(f"site_id {site_id!r} would write outside root {base}")
    return path


def rotated_path(pdir: Path, now: datetime, suffix: str = ".jsonl") -> Path:
    """A fresh ``events.<UTC timestamp><suffix>`` path for a file being rotated."""
    while True:
        path = pdir / f"events.{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}{suffix}"
        # A coarse or stepped-back clock must never make a rotation overwrite an older file.
        if not path.exists() and not path.with_name(path.name + GZ).exists():
            return path
        now += timedelta(microseconds=1)


def event_files(pdir: Path) -> list[Path]:
    """The event files of a partition, leaving out a plain file that has a complete ``.gz``
    twin (left by a crash during rotation, between renaming the gz in and unlinking it)."""
    compressed = sorted(p for s in SUFFIXES.values() for p in pdir.glob("events*" + s + GZ))
    twins = {p.with_suffix("") for p in compressed}
    plain = sorted(p for s in SUFFIXES.values() for p in pdir.glob("events*" + s))
    return compressed + [p for p in plain if p not in twins]


def day_overlaps(name: str, start: datetime | None, end: datetime | None) -> bool:
    """Whether ``name`` is a partition's ``YYYY-MM-DD`` and that UTC day overlaps
    ``[start, end)``; a stray directory ("20261128", "tmp") never does."""
    try:
        day = date.fromisoformat(name)
    except ValueError:
        return False
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    return (
        day.isoformat() == name
        and (start is None or start < midnight + timedelta(days=1))
        and (end is None or end > midnight)
    )


def partition_lines(
    pdir: Path, attempts: int = 3, *, follow_symlinks: bool = True
) -> Iterator[tuple[Path, bytes]]:
    """Every line of every event file of a partition, with the file it came from.

    An emitter may rotate a file between listing and opening it (once open, a rename does not
    matter); then the partition is read again, and the adapter drops the repeated events.
    ``follow_symlinks=False`` skips a file that is a symbolic link, checked by the open itself
    (O_NOFOLLOW), so a link swapped in after listing is refused too.
    """
    for path in event_files(pdir):
        try:
            if follow_symlinks:
                file = path.open("rb")
            else:
                file = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")
        except FileNotFoundError:
            if attempts > 1:
                yield from partition_lines(pdir, attempts - 1, follow_symlinks=follow_symlinks)
            return
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            log.warning("%s is a symbolic link: not read (the root confines reads)", path)
            continue
        with file:
            stream = gzip.GzipFile(fileobj=file) if path.name.endswith(GZ) else file
            try:
                for line in stream:
                    yield path, line
            except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
                # Losing the tail of one damaged file must not fail the whole query.
                log.warning("%s is truncated or corrupt, read what it had: %s", path, exc)
