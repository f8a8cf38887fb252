"""Monitored end to end in direct mode to the real filesystem backend (no servers needed).

What the caller writes (context manager, decorator, async) and what lands on disk: the
lifecycle kinds in order, metrics, metadata, error details, and that every line the SDK
makes is a valid wire event for the core's codec (the contract every SDK is held to).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import pytest
from sdk_helpers import filesystem_events, write_yaml

import wafermon_sdk
from wafermon import App, Entity, Event, decode_batch
from wafermon.events import METADATA_MAX_BYTES
from wafermon_sdk import AppRef, Client, Monitored

APP = AppRef(app_id=uuid.uuid4(), name="wafer-process", version="2.1.0")


@pytest.fixture
def fs_root(tmp_path: Path) -> Path:
    return tmp_path / "events"


@pytest.fixture
def client(tmp_path: Path, fs_root: Path):
    site = write_yaml(
        tmp_path / "site.yaml",
        {
            "site_id": "fab1",
            "backends": [{"name": "fs", "type": "filesystem", "config": {"root": str(fs_root)}}],
        },
    )
    client = Client(mode="direct", site_config=str(site), flush_interval="20ms")
    yield client
    client.close()


def landed(client: Client, root: Path) -> list[dict]:
    assert client.flush(10), client.stats()
    return filesystem_events(root)


def by_entity(events: list[dict], entity_id: str) -> list[dict]:
    return [e for e in events if e["entity"]["id"] == entity_id]


def test_job_with_subjobs_context_managers(client, fs_root):
    with Monitored(
        site_id="fab1",
        app=APP,
        entity_type="job",
        business_key="batch-12345",
        metadata={"priority": "high", "customer": "ACME"},
        emitter=client,
    ) as job:
        subjobs = []
        for wafer in range(3):
            with Monitored(
                site_id="fab1",
                app=APP,
                entity_type="subjob",
                parent_id=job.entity_id,
                sub_key=f"wafer-{wafer}",
                emitter=client,
            ) as subjob:
                time.sleep(0.01)
                subjob.tick(extra_meta={"progress": 0.5, "step": "etch"})
                subjobs.append(subjob)
    events = landed(client, fs_root)
    assert decode_batch(b"\n".join(_lines(fs_root))).ok  # the core's codec accepts every line

    job_events = by_entity(events, job.entity_id)
    assert [e["kind"] for e in job_events] == ["started", "finished"]
    started, finished = job_events
    assert started["app"] == {
        "name": "wafer-process",
        "version": "2.1.0",
        "app_id": str(APP.app_id),
    }
    assert started["entity"] == {"type": "job", "id": job.entity_id, "business_key": "batch-12345"}
    assert finished["metadata"] == {"priority": "high", "customer": "ACME"}
    metrics = finished["metrics"]
    assert metrics["duration_s"] >= 0.03
    assert metrics["cpu_user_s"] >= 0
    assert metrics["cpu_system_s"] >= 0
    assert metrics["mem_max_mb"] > 1
    assert finished["source"]["sdk"] == "python"
    assert finished["source"]["sdk_version"] == wafermon_sdk.__version__

    for wafer, subjob in enumerate(subjobs):
        kinds = by_entity(events, subjob.entity_id)
        assert [e["kind"] for e in kinds] == ["started", "progress", "finished"]
        progress = kinds[1]
        assert progress["entity"]["parent_id"] == job.entity_id
        assert progress["entity"]["sub_key"] == f"wafer-{wafer}"
        assert progress["metrics"]["progress"] == 0.5
        assert progress["metrics"]["duration_s"] >= 0.01
        assert progress["metadata"] == {"step": "etch"}
        assert kinds[2]["metadata"] == {"step": "etch"}  # later events carry merged metadata
        assert "progress" not in kinds[2]["metrics"]
    assert client.stats()["sent"] == 2 + 3 * 3
    assert client.stats()["dropped"] == client.stats()["rejected"] == 0


def _lines(root: Path) -> list[bytes]:
    return [
        line for p in sorted(root.rglob("events*.jsonl")) for line in p.read_bytes().splitlines()
    ]


def test_failed_job_carries_type_message_and_traceback_and_the_exception_propagates(
    client, fs_root
):
    class ChamberFault(RuntimeError):
        pass

    def etch():
        raise ChamberFault("RF power out of range: 1450 W")

    job = Monitored(site_id="fab1", app=APP, emitter=client)
    with pytest.raises(ChamberFault), job:
        etch()
    (failed,) = [
        e for e in by_entity(landed(client, fs_root), job.entity_id) if e["kind"] == "failed"
    ]
    assert failed["error"]["type"].endswith("ChamberFault")
    assert failed["error"]["type"].startswith("test_sdk_monitored.")
    assert failed["error"]["message"] == "RF power out of range: 1450 W"
    stack = failed["error"]["stack"]
    assert stack.startswith("Traceback (most recent call last):")
    assert "in etch" in stack
    assert 'raise ChamberFault("RF power out of range: 1450 W")' in stack
    assert failed["metrics"]["duration_s"] >= 0
    assert job.status == "failed"


def test_decorator_makes_one_job_per_call_and_keeps_the_return_value(client, fs_root):
    @Monitored(site_id="fab1", app=APP, entity_type="job", emitter=client)
    def process(lot: str) -> str:
        return lot.upper()

    assert process("lot-1") == "LOT-1"
    assert process("lot-2") == "LOT-2"
    events = landed(client, fs_root)
    jobs = {e["entity"]["id"] for e in events}
    assert len(jobs) == 2
    assert sorted(e["kind"] for e in events) == ["finished", "finished", "started", "started"]


async def test_async_with_and_async_decorator(client, fs_root):
    @Monitored(site_id="fab1", app=APP, emitter=client)
    async def measure(wafer: int) -> int:
        await asyncio.sleep(0.01)
        return wafer * 2

    async with Monitored(site_id="fab1", app=APP, emitter=client, business_key="async-lot") as job:
        results = await asyncio.gather(*(measure(w) for w in range(5)))
        job.tick(progress=0.25)

    async def failing():
        async with Monitored(site_id="fab1", app=APP, emitter=client, business_key="bad"):
            raise KeyError("missing recipe")

    with pytest.raises(KeyError):
        await failing()
    assert results == [0, 2, 4, 6, 8]
    assert await client.aflush(10)
    events = filesystem_events(fs_root)
    kinds = [e["kind"] for e in by_entity(events, job.entity_id)]
    assert kinds == ["started", "progress", "finished"]
    assert sum(1 for e in events if e["kind"] == "finished") == 6
    (failed,) = [e for e in events if e["kind"] == "failed"]
    assert failed["error"]["type"] == "KeyError"
    assert failed["entity"]["business_key"] == "bad"


def test_a_subjob_without_parent_id_takes_the_enclosing_job(client, fs_root):
    with Monitored(site_id="fab1", app=APP, emitter=client) as job:
        assert wafermon_sdk.current() is job
        with Monitored(site_id="fab1", app=APP, entity_type="subjob", emitter=client) as sub:
            assert wafermon_sdk.current() is sub
        assert wafermon_sdk.current() is job
    assert wafermon_sdk.current() is None
    (started,) = [
        e for e in by_entity(landed(client, fs_root), sub.entity_id) if e["kind"] == "started"
    ]
    assert started["entity"]["parent_id"] == job.entity_id


def test_mistakes_in_the_callers_code_are_reported_where_they_are_made(client):
    with pytest.raises(ValueError, match="entity_type"):
        Monitored(site_id="fab1", app=APP, entity_type="lot", emitter=client)
    with (
        pytest.raises(ValueError, match="parent_id"),
        Monitored(site_id="fab1", app=APP, entity_type="subjob", emitter=client),
    ):
        pass
    with (
        pytest.raises(ValueError, match="site_id"),
        Monitored(site_id="fab 1", app=APP, emitter=client),
    ):
        pass
    with pytest.raises(ValueError, match="sub_key"):
        Monitored(site_id="fab1", app=APP, sub_key="", emitter=client)
    job = Monitored(site_id="fab1", app=APP, emitter=client)
    with pytest.raises(RuntimeError, match="tick"):
        job.tick()


def test_progress_outside_0_1_is_clamped_and_a_non_number_stays_metadata(client, fs_root):
    with Monitored(site_id="fab1", app=APP, emitter=client) as job:
        job.tick(extra_meta={"progress": 1.7})
        job.tick(extra_meta={"progress": "half"})
    progress = [
        e for e in by_entity(landed(client, fs_root), job.entity_id) if e["kind"] == "progress"
    ]
    assert progress[0]["metrics"]["progress"] == 1.0
    assert "progress" not in progress[1]["metrics"]
    assert progress[1]["metadata"] == {"progress": "half"}


def test_metadata_above_the_cap_is_replaced_by_a_note_and_counted(client, fs_root, caplog):
    big = {"blob": "x" * (METADATA_MAX_BYTES + 10)}
    with Monitored(site_id="fab1", app=APP, emitter=client, metadata=big) as job:
        pass
    events = by_entity(landed(client, fs_root), job.entity_id)
    assert [e["kind"] for e in events] == ["started", "finished"]  # lifecycle kept
    assert "above the 16384-byte cap" in events[0]["metadata"]["wafermon_sdk_truncated"]
    assert client.stats()["metadata_truncated"] == 2


def test_values_json_cannot_hold_are_sent_as_text(client, fs_root):
    with Monitored(
        site_id="fab1", app=APP, emitter=client, metadata={"path": Path("/fab/lot")}
    ) as job:
        pass
    assert by_entity(landed(client, fs_root), job.entity_id)[0]["metadata"] == {"path": "/fab/lot"}


def test_emit_event_and_emit_batch_take_events_and_wire_dicts(client, fs_root, caplog):
    now = __import__("datetime").datetime.now(__import__("datetime").UTC)
    event = Event(
        event_id=uuid.uuid4(),
        kind="started",
        time=now,
        site_id="fab1",
        app=App(name="etch"),
        entity=Entity(type="job", id="lot-77"),
    )
    wire = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "kind": "finished",
        "time": now.isoformat().replace("+00:00", "Z"),
        "site_id": "fab1",
        "app": {"name": "etch"},
        "entity": {"type": "job", "id": "lot-77"},
    }
    bad = {**wire, "event_id": str(uuid.uuid4()), "kind": "finshed"}
    assert client.emit_event(event)
    assert client.emit_batch([wire, bad]) == 2
    with caplog.at_level(logging.WARNING, logger="wafermon_sdk"):
        events = landed(client, fs_root)
    assert [e["event_id"] for e in events] == [str(event.event_id), wire["event_id"]]
    stats = client.stats()
    assert stats["rejected"] == 1
    assert "kind" in stats["last_error"]
    assert "finshed" in stats["last_error"]
    assert any("rejected" in r.message for r in caplog.records)
    with pytest.raises(TypeError):
        client.emit_event("not an event")
