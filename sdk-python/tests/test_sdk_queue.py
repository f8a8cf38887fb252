"""The in-process queue: what happens when it is full, and that every event is accounted for.

To fill the queue the shipper must be stuck: the sidecar URL points at a port nobody listens
on and retries back off for seconds, so the shipper holds one batch while callers keep going.
Accounting holds in every policy: queued + spooled-by-callers + dropped == emitted.
"""

from __future__ import annotations

import logging
import time
import uuid

import httpx
from sdk_helpers import free_port, running_stack, wait_until

from wafermon_sdk import AppRef, Client, Monitored

APP = AppRef(name="queue-test")


def stuck_client(policy: str, **settings) -> Client:
    defaults = {
        "sidecar_url": f"http://127.0.0.1:{free_port()}",
        "site_id": "fab1",
        "queue_size": 10,
        "batch_size": 5,
        "max_retries": 1000,
        "retry_base_delay": "5s",
        "flush_interval": "10ms",
    }
    return Client(queue_full=policy, **{**defaults, **settings})


def emit(client: Client, count: int) -> list[bool]:
    return [
        client.emit_event(
            {
                "schema_version": 1,
                "event_id": str(uuid.uuid4()),
                "kind": "started",
                "time": "2026-11-28T09:30:00Z",
                "site_id": "fab1",
                "app": {"name": "etch"},
                "entity": {"type": "job", "id": f"lot-{n}"},
            }
        )
        for n in range(count)
    ]


def settle(client: Client) -> None:
    """Wait until the shipper has taken its first batch and is stuck retrying it."""
    emit(client, 1)
    wait_until(lambda: client.stats()["retries"] >= 1, what="the shipper retrying")


def test_drop_policy_counts_every_drop_and_warns_once(caplog):
    client = stuck_client("drop")
    settle(client)
    with caplog.at_level(logging.WARNING, logger="wafermon_sdk"):
        accepted = emit(client, 100)
    stats = client.stats()
    assert accepted.count(False) == stats["dropped"] >= 85
    assert stats["queued"] + stats["dropped"] == 101
    assert "queue full (10 events, policy drop)" in stats["last_error"]
    warnings = [r for r in caplog.records if "dropped an event" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: one line, not 90
    client.close(timeout=2)


def test_block_policy_waits_briefly_then_drops():
    client = stuck_client("block", block_timeout="50ms")
    settle(client)
    emit(client, 10)  # fills the queue
    began = time.monotonic()
    accepted = emit(client, 4)
    took = time.monotonic() - began
    assert accepted == [False] * 4
    assert 0.2 <= took < 2.0  # about 4 x 50 ms: the caller waited, then gave up
    assert client.stats()["dropped"] == 4
    client.close(timeout=2)


def test_spool_policy_writes_the_overflow_to_disk_and_it_all_arrives(tmp_path):
    with running_stack(tmp_path / "stack", sidecar=False) as stack:
        client = Client(
            sidecar_url=stack.sidecar_url,
            site_id="fab1",
            queue_size=10,
            batch_size=5,
            queue_full="spool",
            max_retries=3,
            retry_base_delay="300ms",
            replay_interval="100ms",
            flush_interval="10ms",
        )
        ids = []
        for n in range(60):
            with Monitored(app=APP, business_key=f"lot-{n}", client=client) as job:
                ids.append(job.entity_id)
        stats = client.stats()
        assert stats["dropped"] == 0
        assert stats["spooled"] >= 60  # the callers' overflow, and batches the shipper gave up on
        stack.start_sidecar()
        wait_until(lambda: client.flush(10), timeout=60, what="the spool replayed")
        jobs = httpx.get(f"{stack.gateway.url}/v1/jobs?limit=1000", timeout=10).json()["items"]
        wait_until(
            lambda: (
                len(
                    [
                        j
                        for j in httpx.get(
                            f"{stack.gateway.url}/v1/jobs?limit=1000", timeout=10
                        ).json()["items"]
                        if j["status"] == "finished"
                    ]
                )
                == 60
            ),
            what="60 finished jobs at the gateway",
        )
        jobs = httpx.get(f"{stack.gateway.url}/v1/jobs?limit=1000", timeout=10).json()["items"]
        assert {j["entity_id"] for j in jobs} == set(ids)
        assert all(j["event_count"] == 2 for j in jobs)
        client.close()


def test_closing_while_the_sidecar_is_down_is_quick_and_keeps_the_events_on_disk(tmp_path):
    client = stuck_client("block", queue_size=1000)
    emit(client, 20)
    began = time.monotonic()
    assert client.close(timeout=10) is False
    assert time.monotonic() - began < 5
    stats = client.stats()
    assert stats["spooled"] == 20
    assert stats["dropped"] == 0
    kept = [p for p in (tmp_path / "sdk-spool").iterdir() if not p.name.startswith(".")]
    assert len(kept) == 1
    assert list(kept[0].glob("seg-*.wal"))


def test_a_later_process_replays_what_an_earlier_one_left_in_the_spool(tmp_path):
    """Events spooled by a client that closed (or died) while the sidecar was away are sent by
    the next client that uses the same spool_dir."""
    with running_stack(tmp_path / "stack", sidecar=False) as stack:
        first = Client(sidecar_url=stack.sidecar_url, site_id="fab1", enable_retries=False)
        with Monitored(app=APP, business_key="left-behind", client=first) as job:
            pass
        assert first.close(timeout=5) is False
        assert first.stats()["spooled"] == 2
        stack.start_sidecar()
        second = Client(sidecar_url=stack.sidecar_url, site_id="fab1", replay_interval="50ms")
        assert second.flush(10)  # starts the shipper, which adopts and replays the orphan
        detail = stack.wait_for_job(job.entity_id, lambda d: d["job"]["status"] == "finished")
        assert detail["job"]["business_key"] == "left-behind"
        assert second.stats()["replayed"] == 2
        second.close()
        assert not [p for p in (tmp_path / "sdk-spool").iterdir() if not p.name.startswith(".")]
