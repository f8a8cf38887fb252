"""``wafermon demo``: realistic lots, valid on the wire, through a real sidecar or to stdout."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta

from wafermon import decode_batch
from wafermon.testing import sidecar_config, wafermon_command, write_yaml
from wafermon_stack.demo import DemoFeeder


def stored_lines(root) -> list[bytes]:
    return [line for f in sorted(root.rglob("*.jsonl")) for line in f.read_bytes().splitlines()]


def test_demo_lots_are_valid_ordered_and_in_the_past():
    feeder = DemoFeeder("http://unused", seed=1, use_sdk=False)
    start = datetime.now(UTC) - timedelta(hours=2)
    events = feeder.lot_events(start)
    job = events[0].entity
    assert (events[0].kind, job.type) == ("started", "job")
    assert events[-1].entity == job
    assert events[-1].kind in ("finished", "failed")
    wafers = {e.entity.id for e in events if e.entity.type == "subjob"}
    assert 5 <= len(wafers) <= 12
    assert all(e.entity.parent_id == job.id for e in events if e.entity.type == "subjob")
    times = [e.time for e in events]
    assert times == sorted(times)
    lots = list(feeder.past_lots(4, hours=1))
    ends = [lot[-1].time for lot in lots]
    assert ends == sorted(ends)
    assert ends[-1] < datetime.now(UTC)
    assert lots[0][0].time > datetime.now(UTC) - timedelta(hours=1, minutes=30)
    feeder.close()


def test_demo_burst_goes_through_a_real_sidecar(tmp_path, wafermon_process):
    root = tmp_path / "events"
    backends = [{"name": "files", "type": "filesystem", "config": {"root": str(root)}}]
    sidecar = wafermon_process("sidecar", sidecar_config(tmp_path, backends))
    feeder = DemoFeeder(sidecar.url, seed=3, use_sdk=False)
    sent = feeder.burst(3, hours=1)
    feeder.close()
    assert sent > 3 * 10
    assert "3 lots started" in feeder.summary()
    assert "via http" in feeder.summary()
    deadline = time.monotonic() + 30
    while len(stored_lines(root)) < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    stored = stored_lines(root)
    assert len(stored) == sent
    decoded = decode_batch(b"\n".join(stored))
    assert not decoded.rejected
    jobs = {e.entity.id for e in decoded.events if e.entity.type == "job"}
    assert len(jobs) == 3


def test_demo_stdout_prints_lots_that_wafermon_emit_takes(tmp_path):
    """Lots as NDJSON for any backend: ``wafermon demo --stdout | wafermon emit`` (quickstart)."""
    printed = subprocess.run(
        [wafermon_command(), "demo", "--stdout", "--history", "2", "--seed", "1", "--site-id",
         "fab2"],
        capture_output=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    decoded = decode_batch(printed)
    assert not decoded.rejected
    events = decoded.events
    assert {e.site_id for e in events} == {"fab2"}
    assert len({e.entity.id for e in events if e.entity.type == "job"}) == 2
    site = write_yaml(
        tmp_path / "site.yaml",
        {
            "site_id": "fab2",
            "backends": [
                {"name": "events", "type": "filesystem", "config": {"root": str(tmp_path / "e")}}
            ],
        },
    )
    emitted = subprocess.run(
        [wafermon_command(), "emit", "-c", str(site)],
        input=printed, capture_output=True, timeout=120,
    )  # fmt: skip
    assert emitted.returncode == 0, emitted.stderr
    assert f"events: {len(events)} events" in emitted.stderr.decode()
    assert len(stored_lines(tmp_path / "e")) == len(events)
