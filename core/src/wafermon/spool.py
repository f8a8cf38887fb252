"""Durable spool: an append-only, checksummed log of event batches on local disk.

What the sidecar (and the Python SDK while its sidecar is away) acknowledges must survive
kill -9, so a record is on disk, fsynced, before ``append`` returns. Concurrent writers share
one fsync (group commit). Each backend has its own acknowledged position; a segment file is
deleted once every backend has acknowledged all of it. A byte cap makes ``append`` refuse new
input (``SpoolFull``) instead of dropping old data or growing without bound.

On disk, in the spool directory:
  seg-<first seq, 20 digits>.wal    records: header <length u32, crc32 u32, seq u64> + payload
  acks/<backend>.ack                the highest seq that backend has acknowledged (text)
The crc covers seq and payload. On open, a torn or corrupt tail of a segment (a crash mid-write
or a bad disk) is detected, truncated and logged: such records were never acknowledged.
This module must never hold more than one read batch of payloads in memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import struct
import threading
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, BinaryIO

import attrs

from .errors import WafermonError


def _private(path: str, flags: int) -> int:
    """``open`` opener: a new file is readable by its owner only (0600)."""
    return os.open(path, flags, 0o600)


log = logging.getLogger(__name__)

HEADER = struct.Struct("<IIQ")  # payload length, crc32(seq + payload), seq
MAX_RECORD_BYTES = 64 * 2**20
_SEGMENT = re.compile(r"seg-(\d{20})\.wal")
_BACKEND = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class SpoolFull(WafermonError):
    """The spool is at its byte cap; the caller should refuse input and ask to retry later."""


def _crc(seq: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(seq.to_bytes(8, "little")))


@attrs.define
class _Segment:
    path: Path
    first_seq: int
    last_seq: int  # first_seq - 1 while empty
    size: int
    #: Byte offset of each record (seq first_seq + i at offsets[i]): a read starts where it
    #: should instead of walking the segment from its start. 8 bytes a record.
    offsets: array[int] = attrs.Factory(lambda: array("Q"))


@attrs.define
class Corruption:
    """Where a segment stops being readable, and why."""

    path: Path
    offset: int
    reason: str
    bytes_after: int


@attrs.define
class _Ticket:
    seq: int
    payload: bytes
    done: bool = False
    error: BaseException | None = None


def scan(path: Path, first_seq: int) -> tuple[list[tuple[int, int, int]], Corruption | None]:
    """(seq, offset, length) of each good record of a segment file, and the first corruption."""
    records: list[tuple[int, int, int]] = []
    size = path.stat().st_size
    expected = first_seq
    with path.open("rb") as file:
        offset = 0
        while offset < size:
            header = file.read(HEADER.size)
            if len(header) < HEADER.size:
                return records, Corruption(path, offset, "torn record header", size - offset)
            length, crc, seq = HEADER.unpack(header)
            if length > MAX_RECORD_BYTES or offset + HEADER.size + length > size:
                return records, Corruption(path, offset, "torn record payload", size - offset)
            payload = file.read(length)
            if seq != expected or _crc(seq, payload) != crc:
                return records, Corruption(path, offset, "checksum mismatch", size - offset)
            records.append((seq, offset, length))
            offset += HEADER.size + length
            expected += 1
    return records, None


class Spool:
    """A directory-backed durable queue with one acknowledged position per backend.

    Thread-safe; every method blocks on disk I/O, so async code calls it through a thread
    (``asyncio.to_thread``): group commit then also batches the fsyncs of concurrent requests.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        backends: Iterable[str],
        *,
        max_bytes: int = 2**30,
        segment_bytes: int = 64 * 2**20,
        fsync: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_enabled = fsync
        self.fsyncs = 0  # group commits so far: visible in metrics and tests
        self._cond = threading.Condition()
        self._pending: list[_Ticket] = []
        self._pending_bytes = 0
        self._flushing = False
        # Private: events may carry business data (0700 folders, 0600 files, whatever umask).
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.directory / "acks").mkdir(mode=0o700, exist_ok=True)
        self._segments = self._recover()
        self._next_seq = self._segments[-1].last_seq + 1 if self._segments else 1
        self._active: BinaryIO | None = None
        self.acked: dict[str, int] = {}
        for name in backends:
            if not _BACKEND.fullmatch(name):
                raise ValueError(f"backend name {name!r} cannot name an ack file")
            self.acked[name] = self._read_ack(name)

    # -- recovery -------------------------------------------------------------------------------

    def _recover(self) -> list[_Segment]:
        segments: list[_Segment] = []
        for path in sorted(self.directory.glob("seg-*.wal")):
            match = _SEGMENT.fullmatch(path.name)
            if not match:
                continue
            first = int(match[1])
            records, corruption = scan(path, first)
            if corruption is not None:
                log.warning(
                    "spool %s: %s at byte %d; truncating %d bytes (never acknowledged)",
                    path,
                    corruption.reason,
                    corruption.offset,
                    corruption.bytes_after,
                )
                with path.open("r+b") as file:
                    file.truncate(corruption.offset)
                    self._sync(file)
            last = records[-1][0] if records else first - 1
            if segments and first != segments[-1].last_seq + 1:
                log.warning("spool %s: sequence gap after %s", path, segments[-1].path.name)
            offsets = array("Q", (offset for _seq, offset, _length in records))
            segments.append(_Segment(path, first, last, path.stat().st_size, offsets))
        return segments

    def _read_ack(self, backend: str) -> int:
        path = self.directory / "acks" / f"{backend}.ack"
        try:
            return int(path.read_text().strip() or 0)
        except FileNotFoundError:
            # A backend new to this spool starts at what the spool still holds.
            return self._segments[0].first_seq - 1 if self._segments else 0

    # -- writing --------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes of all segment files."""
        return sum(s.size for s in self._segments)

    @property
    def segment_count(self) -> int:
        """Segment files in use (acknowledged ones are deleted as the backends catch up)."""
        return len(self._segments)

    @property
    def last_seq(self) -> int:
        """Seq of the newest durable record (0 when nothing was ever written)."""
        return self._segments[-1].last_seq if self._segments else 0

    def append(self, payload: bytes) -> int:
        """Store one record durably and return its seq. Raises SpoolFull at the byte cap."""
        (result,) = self.append_many([payload])
        if isinstance(result, Exception):
            raise result
        return result

    def append_many(self, payloads: Sequence[bytes]) -> list[int | Exception]:
        """Store records durably, one seq each, in order; what one record cannot take is in
        its place: SpoolFull at the byte cap, ValueError above MAX_RECORD_BYTES.

        Every record queued while a write is under way goes into the next write, with one
        fsync for all (group commit). A failed write (OSError) is raised: none of it is stored.
        """
        results: list[int | Exception] = []
        tickets: list[_Ticket] = []
        with self._cond:
            for payload in payloads:
                if len(payload) > MAX_RECORD_BYTES:
                    results.append(
                        ValueError(f"record of {len(payload)} bytes is above {MAX_RECORD_BYTES}")
                    )
                    continue
                need = HEADER.size + len(payload)
                if self.size + self._pending_bytes + need > self.max_bytes:
                    results.append(
                        SpoolFull(
                            f"spool {self.directory} is full ({self.size} of {self.max_bytes} "
                            "bytes)"
                        )
                    )
                    continue
                ticket = _Ticket(self._next_seq, payload)
                self._next_seq += 1
                self._pending.append(ticket)
                self._pending_bytes += need
                tickets.append(ticket)
                results.append(ticket.seq)
            for ticket in tickets:
                self._until_written(ticket)
        for ticket in tickets:
            if ticket.error is not None:
                raise ticket.error
        return results

    def _until_written(self, ticket: _Ticket) -> None:
        """Wait (holding ``_cond``) until ``ticket`` is written: the first waiter to find no
        write under way writes everything pending, outside the lock, for all."""
        while not ticket.done:
            if self._flushing:
                self._cond.wait()
                continue
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            self._flushing = True
            self._cond.release()
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting writer
                for waiting in batch:
                    waiting.error = exc
            finally:
                self._cond.acquire()
                self._flushing = False
                for waiting in batch:
                    waiting.done = True
                self._cond.notify_all()

    def _write(self, batch: list[_Ticket]) -> None:
        segment = self._segments[-1] if self._segments else None
        if segment is None or segment.size >= self.segment_bytes:
            segment = self._new_segment(batch[0].seq)
        elif self._active is None:  # first write after opening an existing spool
            self._active = segment.path.open("ab", buffering=0)
        active = self._active
        assert active is not None  # _new_segment opened it
        start = segment.size
        data = b"".join(
            HEADER.pack(len(t.payload), _crc(t.seq, t.payload), t.seq) + t.payload for t in batch
        )
        try:
            active.write(data)
            self._sync(active)
        except OSError:
            # Cut what reached the file so a retry does not follow half a record.
            active.truncate(start)
            raise
        offset = start
        for t in batch:
            segment.offsets.append(offset)
            offset += HEADER.size + len(t.payload)
        segment.size += len(data)
        segment.last_seq = batch[-1].seq
        self.fsyncs += 1

    def _new_segment(self, first_seq: int) -> _Segment:
        if self._active is not None:
            self._active.close()
        path = self.directory / f"seg-{first_seq:020d}.wal"
        self._active = open(path, "ab", buffering=0, opener=_private)  # noqa: SIM115
        self._sync_dir()
        segment = _Segment(path, first_seq, first_seq - 1, 0)
        self._segments.append(segment)
        return segment

    # -- reading and acknowledging --------------------------------------------------------------

    def read(self, after_seq: int, max_bytes: int = 4 * 2**20) -> list[tuple[int, bytes]]:
        """Durable records with seq > after_seq, oldest first, about max_bytes of payload."""
        with self._cond:
            segments = [s for s in self._segments if s.last_seq > after_seq]
            durable_last = self.last_seq
        out: list[tuple[int, bytes]] = []
        taken = 0
        for segment in segments:
            for seq, payload in self._records(segment, after_seq, durable_last):
                out.append((seq, payload))
                taken += len(payload)
                if taken >= max_bytes:
                    return out
        return out

    def _records(self, segment: _Segment, after_seq: int, last: int) -> Iterator[tuple[int, bytes]]:
        try:
            file = segment.path.open("rb")
        except FileNotFoundError:  # deleted after every backend acked it
            return
        with file:
            skip = after_seq + 1 - segment.first_seq
            if skip > 0:
                if skip >= len(segment.offsets):
                    return
                file.seek(segment.offsets[skip])
            while True:
                header = file.read(HEADER.size)
                if len(header) < HEADER.size:
                    return
                length, _crc_value, seq = HEADER.unpack(header)
                if seq > last:
                    return
                if seq <= after_seq:
                    file.seek(length, os.SEEK_CUR)
                    continue
                yield seq, file.read(length)

    def ack(self, backend: str, seq: int) -> None:
        """Record that ``backend`` has every record up to ``seq``; frees fully acked segments."""
        if backend not in self.acked:
            raise KeyError(f"unknown backend {backend!r}; spool backends: {sorted(self.acked)}")
        if seq <= self.acked[backend]:
            return
        path = self.directory / "acks" / f"{backend}.ack"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", opener=_private) as file:
            file.write(f"{seq}\n")
            self._sync(file)
        os.replace(tmp, path)
        self._sync_dir(path.parent)
        with self._cond:
            self.acked[backend] = seq
            self._collect()

    def lag(self, backend: str) -> int:
        """Records durable in the spool that ``backend`` has not acknowledged."""
        return max(0, self.last_seq - self.acked[backend])

    def _collect(self) -> None:
        floor = min(self.acked.values(), default=self.last_seq)
        while len(self._segments) > 1 and self._segments[0].last_seq <= floor:
            segment = self._segments.pop(0)
            segment.path.unlink(missing_ok=True)
            log.debug("spool: deleted %s, acknowledged by every backend", segment.path.name)

    def close(self) -> None:
        with self._cond:
            if self._active is not None:
                self._active.close()
                self._active = None

    def _sync(self, file: IO[Any]) -> None:
        if self.fsync_enabled:
            file.flush()
            os.fsync(file.fileno())

    def _sync_dir(self, directory: Path | None = None) -> None:
        if self.fsync_enabled:
            fd = os.open(directory or self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class GroupCommit:
    """``Spool.append`` for coroutines: everything appended while a write is under way goes
    into the next one, with one hand-off to the writer thread and one fsync for all.

    A thread per waiting request (the obvious ``run_in_executor(spool.append)``) costs a thread
    switch and a fight for the GIL per request; a burst of small requests then spends more
    time switching threads than writing. Here requests wait on the event loop.
    """

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self._queue: list[tuple[bytes, asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="spool-writer")

    async def append(self, payload: bytes) -> int:
        """The record's seq once it is on disk (fsynced); SpoolFull, ValueError or the write's
        OSError when it is not stored."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((payload, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_queued())
        return await future

    async def _write_queued(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[tuple[bytes, asyncio.Future[int]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                results: list[int | Exception]
                try:
                    results = await loop.run_in_executor(
                        self._thread, self.spool.append_many, [p for p, _ in batch]
                    )
                except OSError as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its request was cancelled
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                batch = []
        finally:
            self._writer = None
            for _, future in batch + self._queue:  # the writer itself was stopped or failed
                if not future.done():
                    future.set_exception(OSError("the spool writer stopped before this write"))
            self._queue = []

    async def close(self) -> None:
        """Wait for the writes under way, then stop the writer thread."""
        if self._writer is not None:
            await asyncio.shield(self._writer)
        await asyncio.to_thread(self._thread.shutdown, True)


def verify(directory: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[Corruption]]:
    """Read-only check of every segment: a summary per segment and every corruption found."""
    summaries, problems = [], []
    for path in sorted(Path(directory).glob("seg-*.wal")):
        match = _SEGMENT.fullmatch(path.name)
        if not match:
            continue
        records, corruption = scan(path, int(match[1]))
        summaries.append(
            {
                "segment": path.name,
                "bytes": path.stat().st_size,
                "records": len(records),
                "first_seq": records[0][0] if records else None,
                "last_seq": records[-1][0] if records else None,
            }
        )
        if corruption is not None:
            problems.append(corruption)
    return summaries, problems
