"""The durable spool: group commit, crash recovery, acks, segment deletion, the byte cap."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from click.testing import CliRunner

from wafermon.cli import cli
from wafermon.spool import HEADER, GroupCommit, Spool, SpoolFull, verify


def payloads(spool: Spool, after: int = 0) -> list[bytes]:
    return [payload for _, payload in spool.read(after, max_bytes=2**30)]


def test_append_read_and_reopen(tmp_path):
    spool = Spool(tmp_path, ["gw"])
    assert [spool.append(b"a"), spool.append(b"bb")] == [1, 2]
    spool.close()
    again = Spool(tmp_path, ["gw"])
    assert payloads(again) == [b"a", b"bb"]
    assert again.append(b"c") == 3
    assert again.read(2) == [(3, b"c")]


def test_concurrent_writers_share_fsyncs(tmp_path):
    spool = Spool(tmp_path, ["gw"])
    barrier = threading.Barrier(16)

    def writer(n: int) -> None:
        barrier.wait()
        for i in range(50):
            spool.append(f"{n}-{i}".encode())

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = spool.read(0, max_bytes=2**30)
    assert [seq for seq, _ in records] == list(range(1, 801))
    assert len({p for _, p in records}) == 800
    assert spool.fsyncs < 800  # group commit: several writers per fsync


def test_append_many_stores_what_fits_and_says_why_not_for_the_rest(tmp_path):
    spool = Spool(tmp_path, ["gw"], max_bytes=HEADER.size * 3 + 300)
    results = spool.append_many([b"a" * 100, b"b" * 100, b"c" * 400, b"d" * 100])
    assert results[:2] == [1, 2]
    assert results[3] == 3
    assert isinstance(results[2], SpoolFull)
    assert payloads(spool) == [b"a" * 100, b"b" * 100, b"d" * 100]
    assert spool.fsyncs == 1  # one write for the whole call


async def test_group_commit_shares_one_write_among_waiting_coroutines(tmp_path):
    spool = Spool(tmp_path, ["gw"])
    commit = GroupCommit(spool)
    seqs = await asyncio.gather(*(commit.append(f"r{n}".encode()) for n in range(200)))
    assert sorted(seqs) == list(range(1, 201))
    assert [p for _, p in spool.read(0)] == [f"r{n}".encode() for n in range(200)]
    # The first write takes the first append alone; everything queued meanwhile goes next.
    assert spool.fsyncs <= 3
    await commit.close()


async def test_group_commit_refuses_per_record_and_reports_a_failed_write(tmp_path):
    spool = Spool(tmp_path, ["gw"], max_bytes=HEADER.size + 100)
    commit = GroupCommit(spool)
    first, full = await asyncio.gather(
        commit.append(b"x" * 100), commit.append(b"y"), return_exceptions=True
    )
    assert first == 1
    assert isinstance(full, SpoolFull)

    def broken(_payloads: object) -> list[int | Exception]:
        raise OSError(28, "No space left on device")

    spool.append_many = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="No space left"):
        await commit.append(b"z")
    await commit.close()


def test_acks_survive_reopen_and_free_segments(tmp_path):
    spool = Spool(tmp_path, ["a", "b"], segment_bytes=100)
    for _ in range(10):
        spool.append(b"x" * 90)  # one record per segment (90 + header >= 100)
    assert len(list(tmp_path.glob("seg-*.wal"))) == 10
    spool.ack("a", 10)
    assert len(list(tmp_path.glob("seg-*.wal"))) == 10  # b has acked nothing
    spool.ack("b", 4)
    assert sorted(p.name for p in tmp_path.glob("seg-*.wal"))[0] == f"seg-{5:020d}.wal"
    spool.close()
    again = Spool(tmp_path, ["a", "b"])
    assert again.acked == {"a": 10, "b": 4}
    assert again.lag("b") == 6
    assert [seq for seq, _ in again.read(again.acked["b"])] == [5, 6, 7, 8, 9, 10]


def test_a_new_backend_starts_at_what_the_spool_holds(tmp_path):
    spool = Spool(tmp_path, ["a"], segment_bytes=100)
    for _ in range(4):
        spool.append(b"y" * 90)
    spool.ack("a", 3)
    spool.close()
    again = Spool(tmp_path, ["a", "new"])
    assert again.acked["new"] == 3  # segments 1-3 are gone; it gets 4 onwards
    with pytest.raises(KeyError, match="unknown backend 'other'"):
        again.ack("other", 1)


def test_byte_cap_refuses_new_input_and_keeps_the_old(tmp_path):
    spool = Spool(tmp_path, ["gw"], max_bytes=1000)
    for _ in range(9):
        spool.append(b"z" * 90)
    with pytest.raises(SpoolFull, match="is full"):
        spool.append(b"z" * 90)
    assert len(payloads(spool)) == 9
    spool.ack("gw", 9)  # nothing freed: the last segment always stays
    spool.close()


def test_torn_tail_is_truncated_and_logged(tmp_path, caplog):
    spool = Spool(tmp_path, ["gw"])
    spool.append(b"good")
    spool.close()
    [segment] = tmp_path.glob("seg-*.wal")
    with segment.open("ab") as file:
        file.write(HEADER.pack(100, 0, 2) + b"only part of it")
    again = Spool(tmp_path, ["gw"])
    assert "torn record payload" in caplog.text
    assert payloads(again) == [b"good"]
    assert again.append(b"next") == 2
    assert payloads(again) == [b"good", b"next"]


def test_corrupt_record_is_detected_by_verify_and_truncated_on_open(tmp_path, caplog):
    spool = Spool(tmp_path, ["gw"])
    for word in (b"one", b"two", b"three"):
        spool.append(word)
    spool.close()
    [segment] = tmp_path.glob("seg-*.wal")
    data = bytearray(segment.read_bytes())
    data[HEADER.size * 2 + 3 + 1] ^= 0xFF  # flip a byte of record 2's payload
    segment.write_bytes(bytes(data))
    summaries, problems = verify(tmp_path)
    assert problems[0].reason == "checksum mismatch"
    assert summaries[0]["records"] == 1
    result = CliRunner().invoke(cli, ["spool", "verify", str(tmp_path)])
    assert result.exit_code == 1
    assert "checksum mismatch" in result.output
    assert payloads(Spool(tmp_path, ["gw"])) == [b"one"]
    assert "truncating" in caplog.text


def test_inspect_shows_segments_and_lag(tmp_path):
    spool = Spool(tmp_path, ["gw", "fs"])
    for _ in range(3):
        spool.append(b"e")
    spool.ack("gw", 2)
    spool.ack("fs", 3)
    spool.close()
    result = CliRunner().invoke(cli, ["spool", "inspect", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "3 record(s)" in result.output
    assert "backend gw: acked 2, lag 1 record(s)" in result.output
    assert CliRunner().invoke(cli, ["spool", "verify", str(tmp_path)]).exit_code == 0


WRITER = textwrap.dedent("""
    import sys, threading
    from wafermon.spool import Spool
    spool = Spool(sys.argv[1], ["gw"], segment_bytes=4096)
    lock = threading.Lock()
    def write(n):
        for i in range(100000):
            seq = spool.append(f"{n}:{i}".encode())
            with lock:  # an acknowledgement: printed only after append returned
                print(f"{n}:{i}", flush=True)
    for n in range(4):
        threading.Thread(target=write, args=(n,), daemon=True).start()
    threading.Event().wait()
""")


def test_every_acknowledged_record_survives_kill_9(tmp_path):
    """Real processes: kill -9 a writer repeatedly; everything it acknowledged is still there."""
    acknowledged: set[bytes] = set()
    for _round in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE
        )
        deadline = time.monotonic() + 0.6
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line:
                lines.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lines.extend(proc.stdout.read().splitlines(keepends=True))
        acknowledged.update(line.strip() for line in lines if line.endswith(b"\n"))
    stored = set(payloads(Spool(tmp_path, ["gw"])))
    assert acknowledged, "the writer acknowledged nothing"
    assert acknowledged <= stored
    assert verify(tmp_path)[1] == []  # recovery left no corruption behind


def test_folders_and_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        spool = Spool(tmp_path / "spool", ["a"])
        spool.append(b"payload")
        spool.ack("a", 1)
        spool.close()
    finally:
        os.umask(old)
    root = tmp_path / "spool"
    modes = {p.relative_to(root).as_posix(): p.stat().st_mode & 0o777 for p in root.rglob("*")}
    modes["."] = root.stat().st_mode & 0o777
    assert modes["."] == modes["acks"] == 0o700
    files = {name: mode for name, mode in modes.items() if name not in (".", "acks")}
    assert files
    assert set(files.values()) == {0o600}, files
