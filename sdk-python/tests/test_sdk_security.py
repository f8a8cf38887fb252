"""Private spools and unguessable, time-ordered event ids."""

from __future__ import annotations

import os
import time
import uuid

from wafermon_sdk import spooling, wire


def test_spool_folders_and_files_are_private_whatever_the_umask(tmp_path):
    root = tmp_path / "spool"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)  # a root someone made open to others
    old = os.umask(0o022)
    try:
        own = spooling.open_own(root, ["sidecar"], 1 << 20)
        own.spool.append(b"{}\n")
        own.spool.ack("sidecar", 1)
    finally:
        os.umask(old)
    try:
        assert root.stat().st_mode & 0o777 == 0o700
        assert own.path.stat().st_mode & 0o777 == 0o700
        files = [p for p in own.path.rglob("*") if p.is_file()]
        assert {p.name for p in files} >= {spooling.LOCK_FILE, "sidecar.ack"}
        assert {p.stat().st_mode & 0o777 for p in files} == {0o600}
        dirs = [p for p in own.path.rglob("*") if p.is_dir()]
        assert {p.stat().st_mode & 0o777 for p in dirs} == {0o700}
    finally:
        own.close(remove_if_drained=True)


def test_event_ids_are_uuid7_time_ordered_and_unique():
    before = time.time_ns() // 1_000_000
    ids = [wire.new_id() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(i) for i in ids]
    assert all(str(u) == i for u, i in zip(parsed, ids, strict=True))  # canonical lower case
    assert {u.version for u in parsed} == {7}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    millis = [u.int >> 80 for u in parsed]
    assert before <= millis[0]
    assert millis[-1] <= after
    assert millis == sorted(millis)  # time-ordered: good for the stores' indexes
    assert len(set(ids)) == len(ids)


def test_the_random_bits_come_from_the_os_csprng(monkeypatch):
    """Not from a seeded PRNG: every random bit of an id is a byte os.urandom gave."""
    calls = []

    def urandom(n: int) -> bytes:
        calls.append(n)
        return bytes([0xA5]) * n

    monkeypatch.setattr(wire.os, "urandom", urandom)
    wire._drop_pool()
    value = uuid.UUID(wire.new_id()).int
    wire._drop_pool()
    assert calls
    rand_a = value >> 64 & 0xFFF
    rand_b = value & (1 << 62) - 1
    pattern = int.from_bytes(bytes([0xA5]) * 10)
    assert rand_a == pattern >> 62 & 0xFFF
    assert rand_b == pattern & (1 << 62) - 1
