"""FilesystemEmitter: appends event batches to JSONL files, rotates and gzips them.

Durability contract: ``emit`` returns only after every line of the batch is written and
fsynced, because returning is what lets the sidecar drop the batch from its own buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

import attrs

from wafermon import (
    ByteSize,
    Emitter,
    Event,
    Health,
    PermanentError,
    RetryableError,
    Seconds,
    encode_ndjson,
)

from . import layout

log = logging.getLogger(__name__)

# Open handles are kept for the partitions written recently; a long-running process writes a
# new partition every day per site, so the least recently used ones are closed beyond this.
MAX_OPEN_FILES = 32


@attrs.frozen
class EmitterSettings:
    """``config:`` of a ``type: filesystem`` backend."""

    root: Path
    rotate_bytes: ByteSize = ByteSize(64 * 2**20)
    rotate_after: Seconds = Seconds(3600.0)
    compress: bool = True
    fsync: bool = True


@attrs.define
class _Active:
    """The open active file of one partition."""

    path: Path
    file: BinaryIO
    size: int
    opened: float  # wall-clock time the file was created, or its mtime if it already existed


class FilesystemEmitter(Emitter):
    Settings = EmitterSettings
    settings: EmitterSettings

    def __init__(self, name: str, settings: EmitterSettings) -> None:
        super().__init__(name, settings)
        self._open: dict[tuple[str, date], _Active] = {}
        # The asyncio lock queues concurrent emits without tying up worker threads; the thread
        # lock protects the handles if an emit is cancelled while its thread is still writing.
        self._lock = asyncio.Lock()
        self._thread_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        root = self.settings.root
        try:
            root.mkdir(parents=True, exist_ok=True)
            for pdir in sorted(root.glob("*/*/")):
                self._recover(pdir)
        except OSError as exc:
            raise RetryableError(f"cannot prepare {exc.filename or root}: {exc.strerror}") from exc

    def _recover(self, pdir: Path) -> None:
        """Finish or undo what a crash interrupted, so the partition is in a known state."""
        for tmp in pdir.glob("*" + layout.TMP):
            tmp.unlink()  # an unfinished gzip; its plain source is still there
        for path in sorted(pdir.glob("events*.jsonl")):
            if path.with_name(path.name + layout.GZ).exists():
                path.unlink()  # the gz is complete, only the unlink was lost
            elif layout.is_rotated_plain(path) and self.settings.compress:
                self._compress(path)
        active = pdir / layout.ACTIVE
        if active.exists():
            self._truncate_torn_tail(active)

    def _truncate_torn_tail(self, path: Path) -> None:
        """Cut a partial last line left by a crash mid-write. It was never acknowledged, and
        left in place it would glue itself to the next line written and corrupt that too."""
        with path.open("r+b") as file:
            size = end = file.seek(0, os.SEEK_END)
            while end > 0:  # scan backwards block by block for the last newline
                start = max(0, end - 65536)
                file.seek(start)
                newline = file.read(end - start).rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                    break
                end = start
            if end == size:
                return
            file.truncate(end)
            self._fsync(file)
        log.warning("%s: dropped a torn last line of %d bytes left by a crash", path, size - end)

    async def health(self) -> Health:
        root = self.settings.root
        if not root.is_dir():
            return Health(False, f"root {root} does not exist or is not a directory")
        if not os.access(root, os.W_OK | os.X_OK):
            return Health(False, f"root {root} is not writable")
        return Health(True)

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close_all)

    def _close_all(self) -> None:
        with self._thread_lock:
            for active in self._open.values():
                with contextlib.suppress(OSError):  # already fsynced; nothing left to lose
                    active.file.close()
            self._open.clear()

    # -- writing --------------------------------------------------------------------------------

    async def emit(self, batch: Sequence[Event]) -> None:
        if not batch:
            return
        groups: dict[tuple[str, date], list[Event]] = defaultdict(list)
        for event in batch:
            groups[(event.site_id, event.time.date())].append(event)  # time is UTC
        async with self._lock:
            # One thread hop per batch: all blocking file work happens in _write.
            await asyncio.to_thread(self._write, groups)

    def _write(self, groups: dict[tuple[str, date], list[Event]]) -> None:
        refused: list[Event] = []
        refusal = None
        with self._thread_lock:
            for (site_id, day), events in groups.items():
                try:
                    pdir = layout.partition_dir(self.settings.root, site_id, day)
                except PermanentError as exc:
                    refused += events
                    refusal = exc
                    continue
                self._append((site_id, day), pdir, encode_ndjson(events))
            for key in list(self._open):
                self._maybe_rotate(key)
        if refusal is not None:
            # The other partitions are durable now; name only the events that were refused.
            raise PermanentError(str(refusal), event_ids=[e.event_id for e in refused])

    def _append(self, key: tuple[str, date], pdir: Path, data: bytes) -> None:
        active = self._open.pop(key, None)
        try:
            active = active or self._open_active(pdir)
            self._open[key] = active  # re-inserted last: the dict doubles as an LRU list
            written = 0
            while written < len(data):  # unbuffered file: a write may be short
                written += active.file.write(data[written:])
            self._fsync(active.file)
        except OSError as exc:
            if active is not None:
                self._discard(key, active)
            path = exc.filename or pdir / layout.ACTIVE
            raise RetryableError(f"cannot write {path}: {exc.strerror}") from exc
        active.size += len(data)
        if len(self._open) > MAX_OPEN_FILES:
            oldest = next(iter(self._open))
            self._open.pop(oldest).file.close()

    def _open_active(self, pdir: Path) -> _Active:
        created = self._make_dirs(pdir)
        path = pdir / layout.ACTIVE
        existed = path.exists()
        # Unbuffered: data goes to the OS in our own write calls, so a failed write cannot
        # leave bytes in a Python buffer to be flushed later behind a truncation.
        file = path.open("ab", buffering=0)
        stat = os.fstat(file.fileno())
        if created or not existed:
            self._fsync_dir(pdir)
        return _Active(path, file, stat.st_size, stat.st_mtime if existed else time.time())

    def _make_dirs(self, pdir: Path) -> bool:
        """Create the site and date directories, fsyncing each parent that gained an entry.

        The root itself is never created here: if it is missing (say, an unmounted disk),
        writing into a fresh directory on the wrong disk would be worse than failing.
        """
        created = False
        for directory in (pdir.parent, pdir):
            if not directory.is_dir():
                directory.mkdir(exist_ok=True)
                self._fsync_dir(directory.parent)
                created = True
        return created

    def _discard(self, key: tuple[str, date], active: _Active) -> None:
        """After a failed write: cut off what part of it reached the file, drop the handle.

        The router retries the batch; without the cut, the retry would append after a partial
        line and both would be unreadable, losing an event that was acknowledged.
        """
        self._open.pop(key, None)
        with contextlib.suppress(OSError):
            os.truncate(active.file.fileno(), active.size)
        with contextlib.suppress(OSError):
            active.file.close()

    # -- rotation -------------------------------------------------------------------------------

    def _maybe_rotate(self, key: tuple[str, date]) -> None:
        active = self._open[key]
        too_big = active.size >= self.settings.rotate_bytes
        too_old = time.time() - active.opened >= self.settings.rotate_after
        if not (too_big or too_old):
            return
        del self._open[key]
        active.file.close()
        try:
            rotated = layout.rotated_path(active.path.parent, datetime.now(UTC))
            os.rename(active.path, rotated)
            self._fsync_dir(rotated.parent)
            if self.settings.compress:
                self._compress(rotated)
        except OSError as exc:
            # The batch is already durable, so this must not fail the emit. Whatever is left
            # (a plain rotated file, a .tmp) is still readable or is cleaned up by start().
            log.error("%s: rotation failed, will retry later: %s", active.path, exc)

    def _compress(self, plain: Path) -> None:
        """gzip ``plain`` next to itself; the .gz appears only once it is complete and durable."""
        gz = plain.with_name(plain.name + layout.GZ)
        tmp = gz.with_name(gz.name + layout.TMP)
        try:
            with plain.open("rb") as src, tmp.open("wb") as raw:
                # Level 6 is gzip's usual speed/size balance; 9 is much slower for little gain.
                with gzip.GzipFile(plain.name, "wb", compresslevel=6, fileobj=raw) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                self._fsync(raw)
            os.rename(tmp, gz)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._fsync_dir(gz.parent)
        plain.unlink()  # if this is lost in a crash, start() removes the plain twin

    # -- fsync ----------------------------------------------------------------------------------

    def _fsync(self, file: BinaryIO) -> None:
        if self.settings.fsync:
            file.flush()
            os.fsync(file.fileno())

    def _fsync_dir(self, directory: Path) -> None:
        """Make a created, renamed or removed directory entry durable (POSIX)."""
        if self.settings.fsync:
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
