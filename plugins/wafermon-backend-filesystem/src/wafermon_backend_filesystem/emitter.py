"""FilesystemEmitter: appends event batches to JSONL files, rotates and gzips them.

``emit`` returns only once the batch is fsynced: returning lets the sidecar drop the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gzip
import logging
import mmap
import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

import attrs
import msgspec

from wafermon import (
    ByteSize,
    Emitter,
    Event,
    FieldValueError,
    Health,
    RetryableError,
    Seconds,
    ndjson_of,
)

from . import formats, layout

log = logging.getLogger(__name__)

# A long-running process opens a new partition every day per site; handles of the least
# recently written ones are closed beyond this many.
MAX_OPEN_FILES = 32
LOCK_FILE = ".writer.lock"
#: What the lock file holds: ``dirty`` while a writer runs, ``clean`` after it closed.
CLEAN, DIRTY = "clean", "dirty"


@attrs.frozen
class EmitterSettings:
    """``config:`` of a ``type: filesystem`` backend."""

    root: Path
    rotate_bytes: ByteSize = ByteSize(64 * 2**20)
    rotate_after: Seconds = Seconds(3600.0)
    compress: bool = True
    fsync: bool = True
    format: str = attrs.field(default="jsonl", validator=lambda *a: _check_format(*a))


def _check_format(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in formats.FORMATS:
        raise FieldValueError(attribute.name, f"must be one of {', '.join(formats.FORMATS)}")


class _Place(msgspec.Struct):
    """The two fields that choose an event's file; msgspec skips the rest of the line."""

    site_id: str
    time: str


_places = msgspec.json.Decoder(_Place).decode_lines


def ndjson_by_partition(ndjson: bytes) -> dict[tuple[str, date], bytes]:
    """Validated NDJSON split by (site, UTC day) without building events: each group's lines
    as they came, in order."""
    places = _places(ndjson)
    keys = {(place.site_id, place.time[:10]) for place in places}
    if len(keys) == 1:  # the usual batch, one site and one day: the bytes as they are
        ((site, day),) = keys
        return {(site, date.fromisoformat(day)): ndjson}
    lines = ndjson.split(b"\n")[:-1]  # each line ends in a newline
    groups: dict[tuple[str, date], list[bytes]] = defaultdict(list)
    days: dict[str, date] = {}
    for place, line in zip(places, lines, strict=True):
        day = days.get(place.time[:10]) or days.setdefault(
            place.time[:10], date.fromisoformat(place.time[:10])
        )
        groups[(place.site_id, day)].append(line)
    return {key: b"\n".join(group) + b"\n" for key, group in groups.items()}


@attrs.define
class _Active:
    path: Path
    file: BinaryIO
    size: int
    opened: float  # when this process created it, or its mtime if it existed already


class FilesystemEmitter(Emitter):
    Settings = EmitterSettings
    settings: EmitterSettings

    def __init__(self, name: str, settings: EmitterSettings) -> None:
        super().__init__(name, settings)
        self._open: dict[tuple[str, date], _Active] = {}  # insertion order = LRU order
        # The asyncio lock queues concurrent emits without tying up worker threads; the thread
        # lock guards the handles if an emit is cancelled while its thread is still writing.
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()
        self._root_lock: TextIO | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        """Create root and take its writer lock; after an unclean stop, finish or undo whatever
        the crash interrupted in each partition.

        The lock file says ``clean`` only between a finished ``close`` and the next start, so
        a root with years of partitions is walked only when the last writer died.
        """
        root = self.settings.root
        try:
            root.mkdir(parents=True, exist_ok=True)
            self._lock_root()
            assert self._root_lock is not None
            self._root_lock.seek(0)
            clean = self._root_lock.read().strip() == CLEAN
            self._mark(DIRTY)
            if not clean:
                for pdir in sorted(root.glob("*/*/")):
                    self._recover(pdir)
        except OSError as exc:
            raise RetryableError(f"cannot prepare {exc.filename or root}: {exc.strerror}") from exc

    def _recover(self, pdir: Path) -> None:
        for tmp in pdir.glob("events*" + layout.TMP):
            tmp.unlink()  # an unfinished gzip; its plain source is still there
        actives = {layout.active_name(s) for s in formats.SUFFIXES.values()}
        for path in sorted(p for s in formats.SUFFIXES.values() for p in pdir.glob("events*" + s)):
            if path.with_name(path.name + layout.GZ).exists():
                path.unlink()  # the gz is complete (renamed in only after fsync)
            elif path.name not in actives and self.settings.compress:
                self._compress(path)  # rotated, not compressed yet
            elif path.name in actives and path.stat().st_size > 0:
                self._truncate_torn_tail(path)

    def _mark(self, state: str) -> None:
        """Write ``state`` into the (held) lock file, durably."""
        assert self._root_lock is not None
        self._root_lock.seek(0)
        self._root_lock.truncate()
        self._root_lock.write(state + "\n")
        self._root_lock.flush()
        self._fsync(self._root_lock)

    def _lock_root(self) -> None:
        """One writer per root: two would rotate and trim each other's files and lose events."""
        self._root_lock = (self.settings.root / LOCK_FILE).open("a+")
        try:
            fcntl.flock(self._root_lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._root_lock.close()
            self._root_lock = None
            raise RetryableError(
                f"{self.settings.root} is in use by another filesystem emitter "
                f"(lock {LOCK_FILE}); only one process may write a root"
            ) from None

    def _truncate_torn_tail(self, path: Path) -> None:
        """Cut a partial last line left by a crash mid-write. It was never acknowledged, and
        left in place it would glue itself to the next line written and spoil that one too."""
        with path.open("r+b") as file:
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                size, end = len(data), data.rfind(b"\n") + 1  # reads only the file's tail
            if end < size:
                file.truncate(end)
                self._fsync(file)
                log.warning("%s: dropped a torn last line of %d bytes", path, size - end)

    async def health(self) -> Health:
        root = self.settings.root
        if not root.is_dir() or not os.access(root, os.W_OK | os.X_OK):
            return Health(False, f"root {root} is missing or not a writable directory")
        return Health(True)

    async def close(self) -> None:
        async with self._lock:
            with self._thread_lock:  # unbuffered files: closing has nothing to flush
                for active in self._open.values():
                    active.file.close()
                self._open.clear()
                if self._root_lock is not None:
                    with contextlib.suppress(OSError):  # left dirty: the next start recovers
                        self._mark(CLEAN)
                    self._root_lock.close()  # releases the flock
                    self._root_lock = None

    async def emit(self, batch: Sequence[Event]) -> None:
        groups: dict[tuple[str, date], list[Event] | bytes]
        if self.settings.format == "jsonl":
            groups = ndjson_by_partition(ndjson_of(batch))  # the bytes as received, no Event
        else:
            groups = defaultdict(list)
            for event in batch:
                groups[(event.site_id, event.time.date())].append(event)  # time is always UTC
        async with self._lock:
            await asyncio.to_thread(self._write, groups)

    def _write(self, groups: dict[tuple[str, date], list[Event] | bytes]) -> None:
        # Check every path before writing anything, so a refused batch is refused whole.
        root = self.settings.root
        pdirs = {key: layout.partition_dir(root, *key) for key in groups}
        with self._thread_lock:
            for key, events in groups.items():
                self._append(key, pdirs[key], events)
            for key in list(self._open):
                self._maybe_rotate(key)

    def _append(self, key: tuple[str, date], pdir: Path, events: list[Event] | bytes) -> None:
        active = self._open.pop(key, None)
        try:
            active = active or self._open_active(pdir)
            self._open[key] = active  # (re)inserted last: most recently used
            data = (
                events
                if isinstance(events, bytes)
                else formats.encode(self.settings.format, events, active.size)
            )
            written = 0
            while written < len(data):  # unbuffered, so a short write is possible
                written += active.file.write(data[written:])
            self._fsync(active.file)
        except OSError as exc:
            if active is not None:
                # Cut off whatever part of the batch reached the file: the router retries it,
                # and appending after a partial line would spoil the retried first line too.
                del self._open[key]
                with contextlib.suppress(OSError):
                    os.truncate(active.file.fileno(), active.size)
                active.file.close()
            path = exc.filename or pdir / layout.active_name(formats.suffix(self.settings.format))
            raise RetryableError(f"cannot write {path}: {exc.strerror}") from exc
        active.size += len(data)
        if len(self._open) > MAX_OPEN_FILES:
            self._open.pop(next(iter(self._open))).file.close()

    def _open_active(self, pdir: Path) -> _Active:
        # start() creates root; after that only site and date directories are created: if root
        # vanishes (a disk unmounted), writing a fresh tree onto the wrong disk is worse.
        for directory in (pdir.parent, pdir):
            if not directory.is_dir():
                directory.mkdir()
                self._fsync_dir(directory.parent)
        path = pdir / layout.active_name(formats.suffix(self.settings.format))
        existed = path.exists()
        # Unbuffered: no bytes of a failed write can linger in a Python buffer and be flushed
        # later, after the truncation that removed the rest of them.
        file = path.open("ab", buffering=0)
        if not existed:
            self._fsync_dir(pdir)
        stat = os.fstat(file.fileno())
        return _Active(path, file, stat.st_size, stat.st_mtime if existed else time.time())

    def _maybe_rotate(self, key: tuple[str, date]) -> None:
        active = self._open[key]
        too_big = active.size >= self.settings.rotate_bytes
        if not too_big and time.time() - active.opened < self.settings.rotate_after:
            return
        tail = formats.footer(self.settings.format)  # closes a JSON array
        try:
            if tail:
                active.file.write(tail)
                active.size += len(tail)
                self._fsync(active.file)
        except OSError as exc:
            log.error("%s: cannot close the file for rotation: %s", active.path, exc)
            return  # stays active; the next batch tries again
        del self._open[key]
        active.file.close()
        try:
            suffix = formats.suffix(self.settings.format)
            rotated = layout.rotated_path(active.path.parent, datetime.now(UTC), suffix)
            os.rename(active.path, rotated)
            self._fsync_dir(rotated.parent)
            if self.settings.compress:
                self._compress(rotated)
        except OSError as exc:
            # The batch is durable already, so this must not fail the emit; a file left plain
            # is still read by queries, and start() compresses it or removes the .tmp.
            log.error("%s: rotation failed: %s", active.path, exc)

    def _compress(self, plain: Path) -> None:
        """gzip ``plain`` beside itself; the .gz name appears only once it is complete."""
        gz = plain.with_name(plain.name + layout.GZ)
        tmp = gz.with_name(gz.name + layout.TMP)
        with plain.open("rb") as src, tmp.open("wb") as raw:
            # Level 6, gzip's usual balance: 9 is much slower for a few percent.
            with gzip.GzipFile(plain.name, "wb", compresslevel=6, fileobj=raw) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            self._fsync(raw)
        os.rename(tmp, gz)
        self._fsync_dir(gz.parent)
        plain.unlink()  # if a crash loses this, start() removes the plain twin

    def _fsync(self, file: BinaryIO) -> None:
        if self.settings.fsync:
            file.flush()
            os.fsync(file.fileno())

    def _fsync_dir(self, directory: Path) -> None:
        """Make a new or renamed directory entry durable too (POSIX needs a separate fsync)."""
        if self.settings.fsync:
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
