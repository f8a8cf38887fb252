"""``wafermon jobs`` / ``wafermon job ID`` against a real gateway process, and the parent filter
of ``/v1/data/unified`` and ``wafermon query --parent``."""

from __future__ import annotations

import json
import subprocess

import httpx
import yaml

from tests.helpers.gateway_process import WAFERMON, gateway_process, stop, write_site
from wafermon import encode_array


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*WAFERMON, *args], capture_output=True, text=True, timeout=60, env={**_env(), **env}
    )


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("WAFERMON_")}


def test_jobs_job_and_parent_filters_read_a_real_gateway(tmp_path, make_event):
    config = write_site(tmp_path, tokens={"ingest": "in-tok", "read": "rd-tok"})
    lot = [make_event(entity_id="lot-7", business_key="LOT7")]
    wafers = [
        make_event(entity_type="subjob", entity_id=f"w{i}", parent_id="lot-7", business_key="LOT7")
        for i in (1, 2)
    ]
    other = [
        make_event(entity_id="lot-8"),
        make_event(entity_type="subjob", entity_id="x1", parent_id="lot-8"),
        make_event(entity_id="lot-7", kind="finished", business_key="LOT7"),
    ]
    with gateway_process(config) as (url, proc):
        answer = httpx.post(
            f"{url}/v1/ingest/managed",
            content=encode_array(lot + wafers + other),
            headers={"Authorization": "Bearer in-tok", "Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        read = {"WAFERMON_GATEWAY": url, "WAFERMON_TOKEN": "rd-tok"}

        listed = run("jobs", **read)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0].split()[:3] == ["entity_id", "status", "app"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert set(rows) == {"lot-7", "lot-8"}
        assert rows["lot-7"][1:4] == ["finished", "etch", "LOT7"]

        subjobs = run("jobs", "--parent", "lot-7", "--json", **read)
        assert subjobs.returncode == 0, subjobs.stderr
        assert {i["entity_id"] for i in json.loads(subjobs.stdout)["items"]} == {"w1", "w2"}

        shown = run("job", "lot-7", **read)
        assert shown.returncode == 0, shown.stderr
        assert "entity_id: lot-7" in shown.stdout
        assert "subjobs (2):" in shown.stdout
        assert "finished  lot-7" in shown.stdout

        missing = run("job", "nope", **read)
        assert missing.returncode == 1
        assert "HTTP 404" in missing.stderr
        assert "no job or subjob with id 'nope'" in missing.stderr

        refused = run("jobs", "--gateway", url, "--token", "wrong")
        assert refused.returncode == 1
        assert "HTTP 403: the bearer token does not grant the read scope" in refused.stderr
        assert "wrong" not in refused.stderr

        unified = httpx.get(
            f"{url}/v1/data/unified",
            params={"parent_id": "lot-7"},
            headers={"Authorization": "Bearer rd-tok"},
        )
        assert unified.status_code == 200, unified.text
        assert sorted(e["entity"]["id"] for e in unified.json()["events"]) == ["w1", "w2"]
        stop(proc)

    site = yaml.safe_load(config.read_text())
    site["sources"] = [{"name": "db", "type": "sql", "config": site["backends"][0]["config"]}]
    config.write_text(yaml.safe_dump(site))
    queried = run("query", "-c", str(config), "--source", "db", "--parent", "lot-8")
    assert queried.returncode == 0, queried.stderr
    assert [json.loads(line)["entity"]["id"] for line in queried.stdout.splitlines()] == ["x1"]
    subjob_events = run("query", "-c", str(config), "--source", "db", "--subjobs")
    ids = sorted(json.loads(line)["entity"]["id"] for line in subjob_events.stdout.splitlines())
    assert ids == ["w1", "w2", "x1"]
