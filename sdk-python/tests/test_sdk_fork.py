"""Fork safety: a child process starts with an empty queue and its own shipper.

The parent keeps events in its queue (a long flush interval) while it forks; if the child
inherited them it would send them again under new event ids and the gateway would count
four events for the parent's job instead of two.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid

import pytest
from sdk_helpers import running_stack

import wafermon_sdk
from wafermon_sdk import AppRef, Client, Monitored

APP = AppRef(name="fork-test")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("fork-stack")) as stack:
        yield stack


def test_os_fork_child_gets_an_empty_queue_and_its_own_shipper(stack):
    client = Client(sidecar_url=stack.sidecar_url, site_id="fab1", flush_interval="30s")
    with Monitored(app=APP, business_key="parent", client=client) as parent_job:
        pass
    assert client.stats()["pending"] == 2  # still queued in the parent when it forks
    child_job_id = str(uuid.uuid4())
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 1
        try:
            stats = client.stats()
            if stats["pending"] == 0 and stats["queued"] == 0:
                with Monitored(
                    app=APP, business_key="child", client=client, entity_id=child_job_id
                ):
                    pass
                code = 0 if client.flush(20) and client.stats()["sent"] == 2 else 3
            else:
                code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(20)
    parent = stack.wait_for_job(parent_job.entity_id, lambda d: d["job"]["status"] == "finished")
    child = stack.wait_for_job(child_job_id, lambda d: d["job"]["status"] == "finished")
    assert parent["job"]["event_count"] == 2
    assert child["job"]["event_count"] == 2
    assert child["events"][0]["source"]["pid"] == pid
    assert parent["events"][0]["source"]["pid"] == os.getpid()
    client.close()


def _child_work(entity_id: str) -> None:
    # No flush here: the SDK flushes when a multiprocessing child ends (it skips atexit).
    with (
        Monitored(app=APP, business_key="mp-child", entity_id=entity_id),
        Monitored(app=APP, entity_type="subjob", sub_key="w1"),
    ):
        pass


def test_multiprocessing_children_flush_on_their_way_out(stack):
    wafermon_sdk.initialize(sidecar_url=stack.sidecar_url, site_id="fab1", flush_interval="30s")
    with Monitored(app=APP, business_key="mp-parent"):
        pass
    context = multiprocessing.get_context("fork")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    processes = [context.Process(target=_child_work, args=(entity_id,)) for entity_id in ids]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    for entity_id in ids:
        detail = stack.wait_for_job(
            entity_id, lambda d: d["job"]["status"] == "finished" and len(d["subjobs"]) == 1
        )
        assert detail["job"]["event_count"] == 2
    assert wafermon_sdk.stats()["pending"] == 2  # the parent's own events, not yet shipped
    assert wafermon_sdk.flush(20)
