"""wafermon.testing's process helpers against a real ``wafermon sidecar`` (from wafermon-hosts):
the ``wafermon_process`` fixture, ``sidecar_config``, ``post_json``, ``wait_for``, and a Proc
stopped with SIGTERM and started again on the same port."""

from __future__ import annotations

import gzip

import orjson

from wafermon.testing import (
    event_ids,
    http_status,
    ndjson_batch,
    post_json,
    sidecar_config,
    wait_for,
)


def written(root) -> list[str]:
    found = []
    for path in sorted(root.rglob("events*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as file:
            found += [orjson.loads(line)["event_id"] for line in file]
    return found


async def test_a_sidecar_started_by_the_kit_delivers_and_restarts_on_its_port(
    tmp_path, wafermon_process
):
    backends = [{"name": "fs", "type": "filesystem", "config": {"root": str(tmp_path / "fs")}}]
    config = sidecar_config(tmp_path, backends)
    sidecar = wafermon_process("sidecar", config, env={"WAFERMON_LOAD_PLUGINS": "hosts,filesystem"})
    body = ndjson_batch(50)
    status, answer = post_json(f"{sidecar.url}/v1/ingest/events", body)
    assert status == 202, answer
    await wait_for(lambda: sorted(written(tmp_path / "fs")) == sorted(event_ids(body)), 30)

    assert sidecar.terminate() == 0
    assert http_status(f"{sidecar.url}/v1/healthz") is None
    sidecar.start()  # the same port, a new log file
    assert sidecar.starts == 2
    assert http_status(f"{sidecar.url}/v1/healthz") == 200
    status, answer = post_json(f"{sidecar.url}/v1/ingest/events", b"not json\n")
    assert status == 400, answer
    assert any(line.get("event") for line in sidecar.log_lines())
