"""The SDK against real processes: ``wafermon sidecar`` forwarding to ``wafermon gateway``.

The gateway keeps its managed store in SQLite under tmp; the sidecar's only backend is
``{type: gateway}``. What the tests assert is read back from the gateway's GET /v1/jobs/{id},
so every hop is the production one: SDK queue -> shipper -> sidecar spool -> router ->
gateway -> store.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import orjson
import pytest
from sdk_helpers import finished_with, running_stack, wait_until

import wafermon_sdk
from wafermon_sdk import AppRef, Monitored, SidecarEmitter

APP = AppRef(app_id=uuid.uuid4(), name="wafer-process", version="2.1.0")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("stack")) as stack:
        yield stack


def test_job_with_subjobs_lands_complete(stack):
    emitter = SidecarEmitter(
        base_url=stack.sidecar_url, timeout=10.0, max_retries=5, enable_retries=True
    )
    with Monitored(
        site_id="fab1",
        app=APP,
        entity_type="job",
        business_key="batch-12345",
        metadata={"priority": "high", "customer": "ACME"},
        emitter=emitter,
    ) as job:
        for wafer_id in range(5):
            with Monitored(
                site_id="fab1",
                app=APP,
                entity_type="subjob",
                parent_id=job.entity_id,
                sub_key=f"wafer-{wafer_id}",
                emitter=emitter,
            ) as subjob:
                time.sleep(0.02)
                subjob.tick(extra_meta={"progress": 0.5, "chamber": f"C{wafer_id}"})
    assert emitter.flush(20), emitter.stats()
    detail = stack.wait_for_job(job.entity_id, finished_with(5))
    stored = detail["job"]
    assert stored["business_key"] == "batch-12345"
    assert stored["app"] == "wafer-process"
    assert stored["app_version"] == "2.1.0"
    assert stored["metadata"] == {"priority": "high", "customer": "ACME"}
    assert stored["duration_s"] >= 0.1
    assert stored["mem_max_mb"] > 1
    assert stored["event_count"] == 2
    subjobs = sorted(detail["subjobs"], key=lambda s: s["sub_key"])
    assert [s["sub_key"] for s in subjobs] == [f"wafer-{w}" for w in range(5)]
    for wafer_id, sub in enumerate(subjobs):
        assert sub["parent_id"] == job.entity_id
        assert sub["status"] == "finished"
        assert sub["duration_s"] >= 0.02
        assert sub["progress"] == 0.5
        assert sub["metadata"] == {"chamber": f"C{wafer_id}"}
        assert sub["event_count"] == 3
    stats = emitter.stats()
    assert stats["sent"] == stats["queued"] == 2 + 5 * 3
    assert stats["spooled"] == stats["dropped"] == stats["rejected"] == 0
    emitter.close()


def test_failing_job_arrives_with_type_message_and_traceback(stack):
    emitter = SidecarEmitter(base_url=stack.sidecar_url)

    def load_recipe(name):
        raise FileNotFoundError(f"recipe {name!r} not found on tool ETCH-07")

    job = Monitored(site_id="fab1", app=APP, business_key="lot-bad", emitter=emitter)
    with pytest.raises(FileNotFoundError), job:
        load_recipe("POLY-3")
    assert emitter.flush(20)
    detail = stack.wait_for_job(job.entity_id, lambda d: d["job"]["status"] == "failed")
    error = detail["job"]["error"]
    assert error["type"] == "FileNotFoundError"
    assert error["message"] == "recipe 'POLY-3' not found on tool ETCH-07"
    assert error["stack"].startswith("Traceback (most recent call last):")
    assert "in load_recipe" in error["stack"]
    assert (
        error["stack"]
        .rstrip()
        .endswith("FileNotFoundError: recipe 'POLY-3' not found on tool ETCH-07")
    )
    (failed,) = [e for e in detail["events"] if e["kind"] == "failed"]
    assert failed["error"] == error
    emitter.close()


def test_32_threads_emitting_at_once(stack):
    client = wafermon_sdk.initialize(sidecar_url=stack.sidecar_url, site_id="fab1")
    jobs: dict[int, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(32)

    def work(n: int) -> None:
        try:
            barrier.wait()
            with Monitored(app=APP, business_key=f"thread-{n}") as job:
                jobs[n] = job.entity_id
                for wafer in range(10):
                    with Monitored(app=APP, entity_type="subjob", sub_key=f"w{wafer}") as sub:
                        sub.tick(extra_meta={"progress": 1.0})
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert wafermon_sdk.flush(30), client.stats()
    expected = 32 * (2 + 10 * 3)
    stats = wafermon_sdk.stats()
    assert stats["queued"] == stats["sent"] == expected
    assert stats["dropped"] == stats["rejected"] == 0
    for n, entity_id in jobs.items():
        detail = stack.wait_for_job(entity_id, finished_with(10))
        assert detail["job"]["business_key"] == f"thread-{n}"
        assert all(s["event_count"] == 3 for s in detail["subjobs"])


def test_module_functions_use_the_default_client_from_the_environment(stack, monkeypatch):
    monkeypatch.setenv("WAFERMON_SIDECAR_URL", stack.sidecar_url)
    monkeypatch.setenv("WAFERMON_SITE_ID", "fab1")
    wafermon_sdk.close()
    with wafermon_sdk.monitored(app=APP, business_key="module-api") as job:
        job.tick(progress=0.9)
    assert wafermon_sdk.get_client().settings.sidecar_url == stack.sidecar_url
    assert wafermon_sdk.flush(20)
    detail = stack.wait_for_job(job.entity_id, lambda d: d["job"]["status"] == "finished")
    assert detail["job"]["progress"] == 0.9
    assert wafermon_sdk.close()


def test_per_event_rejections_of_the_sidecar_are_read_from_its_answer(stack):
    """The sidecar answers 202 with one result per event; the refused ones are reported."""
    from wafermon_sdk.config import load_settings
    from wafermon_sdk.sinks import SidecarSink

    good = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "kind": "started",
        "time": "2026-11-28T09:30:00Z",
        "site_id": "fab1",
        "app": {"name": "etch"},
        "entity": {"type": "job", "id": f"lot-{uuid.uuid4()}"},
    }
    bad = {**good, "event_id": str(uuid.uuid4()), "kind": "finshed"}
    sink = SidecarSink(load_settings(sidecar_url=stack.sidecar_url), "test")
    try:
        refusals = sink.send([orjson.dumps(good) + b"\n", orjson.dumps(bad) + b"\n"])
        assert len(refusals) == 1
        index, why = refusals[0]
        assert index == 1
        assert why.startswith("$.kind: must be one of")
        assert sink.send([orjson.dumps(bad) + b"\n"])[0][0] == 0  # 400: nothing valid
    finally:
        sink.close()


def test_sidecar_down_at_the_start_and_back_midway_loses_nothing(tmp_path):
    with running_stack(tmp_path / "stack", sidecar=False) as stack:
        client = wafermon_sdk.Client(
            sidecar_url=stack.sidecar_url,
            site_id="fab1",
            max_retries=1,
            retry_base_delay="20ms",
            replay_interval="100ms",
            flush_interval="20ms",
        )
        subjobs = []
        with Monitored(app=APP, business_key="outage", client=client) as job:
            for wafer in range(10):
                if wafer == 5:
                    wait_until(lambda: client.stats()["spooled"] >= 10, what="events spooled")
                    stack.start_sidecar()
                with Monitored(
                    app=APP, entity_type="subjob", sub_key=f"w{wafer}", client=client
                ) as sub:
                    sub.tick(extra_meta={"progress": 0.5})
                    subjobs.append(sub.entity_id)
                time.sleep(0.05)
        assert client.flush(30), client.stats()
        stats = client.stats()
        assert stats["spooled"] > 0
        assert stats["replayed"] > 0
        assert stats["dropped"] == stats["rejected"] == 0
        assert stats["spool_lag"] == 0
        assert "unreachable" in stats["sinks"]["sidecar"]["last_error"]
        detail = stack.wait_for_job(job.entity_id, finished_with(10))
        assert sorted(s["entity_id"] for s in detail["subjobs"]) == sorted(subjobs)
        assert all(s["event_count"] == 3 for s in detail["subjobs"])
        assert detail["job"]["event_count"] == 2
        client.close()
        assert not [p for p in (tmp_path / "sdk-spool").iterdir() if not p.name.startswith(".")]


def test_a_full_sidecar_spool_503_is_retried_and_nothing_is_lost(tmp_path):
    """The sidecar answers 503 + Retry-After while its spool is full (its gateway is down):
    the SDK keeps the events in its own spool and they all arrive once the gateway is back."""
    with running_stack(tmp_path / "stack", sidecar=False) as stack:
        import yaml

        config = yaml.safe_load(stack.sidecar.config.read_text())
        config["sidecar"].update(
            max_body_bytes="64KiB",
            spool={
                "dir": str(tmp_path / "small-spool"),
                "max_bytes": "200KiB",
                "segment_bytes": "64KiB",
            },
        )
        stack.sidecar.config.write_text(yaml.safe_dump(config))
        stack.gateway.kill9()
        stack.start_sidecar()
        client = wafermon_sdk.Client(
            sidecar_url=stack.sidecar_url,
            site_id="fab1",
            max_retries=2,
            retry_base_delay="20ms",
            retry_max_delay="50ms",
            replay_interval="100ms",
            batch_size=100,
        )
        ids = []
        for n in range(600):
            with Monitored(
                app=APP, business_key=f"lot-{n}", client=client, metadata={"pad": "x" * 200}
            ) as job:
                ids.append(job.entity_id)
        wait_until(lambda: client.stats()["spooled"] > 0, what="SDK spooling on 503")
        assert "503" in client.stats()["sinks"]["sidecar"]["last_error"]
        stack.gateway.start()
        # flush returns False while the sidecar still refuses; the events wait on disk.
        wait_until(lambda: client.flush(10), timeout=90, what="the SDK spool drained")
        assert client.stats()["dropped"] == 0
        for entity_id in (ids[0], ids[299], ids[-1]):
            stack.wait_for_job(entity_id, lambda d: d["job"]["status"] == "finished", timeout=60)
        jobs = httpx.get(f"{stack.gateway.url}/v1/jobs?limit=1000", timeout=30).json()["items"]
        assert {j["entity_id"] for j in jobs} >= set(ids)
        client.close()
