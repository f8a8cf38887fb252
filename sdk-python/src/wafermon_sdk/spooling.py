"""The SDK's disk spool: ``wafermon.spool.Spool`` directories, one per process, and orphans.

While a sink (the sidecar, a backend) is unreachable, batches go to a durable Spool under
``spool_dir``, with one acknowledged position per sink, and are replayed in order once the sink
answers again. Each process writes its own sub-directory, ``<host>-<pid>-<random>``, holding
an flock on ``.sdk.lock`` while it lives; folders are 0700 and files 0600 whatever the umask.
A directory whose lock is free belongs to a process that is gone: the next SDK process using
the same ``spool_dir`` adopts it, replays it and deletes it, so events spooled by a process
that died still arrive.
This module never deletes a directory that holds a record some sink has not acknowledged.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from wafermon.spool import Spool

log = logging.getLogger("wafermon_sdk")

LOCK_FILE = ".sdk.lock"


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class SpoolDir:
    """One Spool directory and the lock that says a live process owns it."""

    def __init__(self, path: Path, spool: Spool, lock: TextIO, *, own: bool) -> None:
        self.path = path
        self.spool = spool
        self.lock = lock
        self.own = own

    def lag(self, sink: str) -> int:
        return self.spool.lag(sink)

    def drained(self) -> bool:
        return all(self.spool.lag(name) == 0 for name in self.spool.acked)

    def close(self, *, remove_if_drained: bool) -> None:
        """Close the spool; delete the directory when every sink has everything."""
        drained = self.drained()
        self.spool.close()
        if remove_if_drained and drained:
            shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.lock.close()  # releases the flock

    def abandon(self) -> None:
        """After fork, in the child: forget without touching the parent's files or lock."""
        with contextlib.suppress(OSError):
            self.lock.close()  # the parent's descriptor keeps its lock


def private_root(root: Path) -> None:
    """Create ``root`` private (0700); one we own that others can enter is made private too.

    Spooled events may carry business data; a root owned by someone else is left alone (its
    process folders and files are private anyway: 0700 and 0600).
    """
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        log.info("wafermon-sdk: spool folder %s was open to others; made it 0700", root)
        os.chmod(root, 0o700)


def _try_lock(path: Path) -> TextIO | None:
    lock = open(path / LOCK_FILE, "a+", opener=_private)  # noqa: SIM115 - kept open: the lock
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def open_own(root: Path, sinks: Sequence[str], max_bytes: int) -> SpoolDir:
    """A new spool directory for this process under ``root``."""
    name = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Locked under a hidden name first, so no other process can adopt it before we hold it.
    private_root(root)
    hidden = root / f".{name}"
    hidden.mkdir(mode=0o700)
    lock = _try_lock(hidden)
    assert lock is not None  # nobody else knows this new directory
    path = root / name
    hidden.rename(path)
    spool = Spool(path, sinks, max_bytes=max_bytes, segment_bytes=min(16 << 20, max_bytes // 4))
    return SpoolDir(path, spool, lock, own=True)


def adopt_orphans(
    root: Path, sinks: Sequence[str], max_bytes: int, skip: Path | None
) -> list[SpoolDir]:
    """Spool directories under ``root`` whose process is gone and that still hold records.

    Drained orphans are deleted on the way. A directory another process holds is left alone.
    """
    found: list[SpoolDir] = []
    try:
        candidates = sorted(
            p for p in root.iterdir() if p.is_dir() and p != skip and not p.name.startswith(".")
        )
    except OSError:
        return found
    for path in candidates:
        if not (path / LOCK_FILE).exists():
            continue
        try:
            lock = _try_lock(path)
        except OSError:
            continue
        if lock is None:
            continue
        try:
            spool = Spool(path, sinks, max_bytes=max_bytes)
        except (OSError, ValueError) as exc:
            log.warning("wafermon-sdk: cannot open orphaned spool %s: %s", path, exc)
            lock.close()
            continue
        orphan = SpoolDir(path, spool, lock, own=False)
        if orphan.drained():
            orphan.close(remove_if_drained=True)
            continue
        log.info(
            "wafermon-sdk: replaying spool %s left by a process that is gone (%d records)",
            path,
            max(spool.lag(s) for s in sinks),
        )
        found.append(orphan)
    return found
