"""The real ``wafermon gateway`` process: serve, answer over HTTP(S), log JSON, stop on SIGTERM."""

from __future__ import annotations

import json
import ssl
import subprocess

import httpx
import pytest
import yaml

from tests.helpers.gateway import free_port
from tests.helpers.gateway_process import WAFERMON, gateway_process, self_signed, stop, write_site
from wafermon import encode_array


def test_gateway_process_serves_and_stops_cleanly_on_sigterm(tmp_path, make_event):
    config = write_site(tmp_path, tokens={"ingest": "in-tok", "read": "rd-tok"})
    events = [make_event(entity_id="lot-1"), make_event(entity_id="lot-2", kind="failed")]
    with gateway_process(config) as (url, proc):
        r = httpx.post(
            f"{url}/v1/ingest/managed",
            content=encode_array(events),
            headers={"Authorization": "Bearer in-tok", "Content-Type": "application/json"},
        )
        assert r.status_code == 200
        assert r.json()["accepted"] == 2
        r = httpx.get(f"{url}/v1/jobs?sort=start_time", headers={"Authorization": "Bearer rd-tok"})
        assert [j["entity_id"] for j in r.json()["items"]] == ["lot-1", "lot-2"]
        assert [j["status"] for j in r.json()["items"]] == ["running", "failed"]
        assert "wafermon_gateway_events_total" in httpx.get(f"{url}/metrics").text
        _took, logs = stop(proc)
    events_logged = [line["event"] for line in logs]
    assert "gateway started" in events_logged
    assert events_logged[-2:] == ["gateway stopped", "gateway exited"]
    requests = [line for line in logs if line["event"] == "request"]
    ingest = next(line for line in requests if line["path"] == "/v1/ingest/managed")
    assert ingest["method"] == "POST"
    assert ingest["status"] == 200
    assert ingest["duration_ms"] > 0
    assert ingest["request_id"]
    assert all(line["level"] and line["timestamp"] for line in logs)
    text = json.dumps(logs)
    assert "in-tok" not in text
    assert "rd-tok" not in text


def test_sigterm_ends_open_event_streams_promptly(tmp_path):
    with (
        gateway_process(write_site(tmp_path)) as (url, proc),
        httpx.stream("GET", f"{url}/v1/stream", timeout=10) as response,
    ):
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        took, logs = stop(proc)
        list(lines)  # ends: the server finished the stream instead of cutting it
    assert took < 5  # not the 10 s graceful timeout
    assert any(line["event"] == "gateway stopped" for line in logs)


def test_check_validates_and_exits(tmp_path):
    ok = subprocess.run(
        [*WAFERMON, "gateway", "--config", str(write_site(tmp_path)), "--check"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "OK (site fab1)" in ok.stdout
    assert "store managed (sql)" in ok.stdout

    bad = write_site(tmp_path, store="db", max_body_bytes="huge")
    result = subprocess.run(
        [*WAFERMON, "gateway", "--config", str(bad), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"error: {bad}: invalid config" in result.stderr
    assert "  - gateway.max_body_bytes (line 4): expected a size" in result.stderr


def test_a_store_that_cannot_start_exits_1_naming_it(tmp_path):
    config = {
        "site_id": "fab1",
        "backends": [
            {
                "name": "managed",
                "type": "sql",
                "config": {"url": "postgresql+asyncpg://nonexistent@127.0.0.1:1/wafermon"},
            }
        ],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [*WAFERMON, "gateway", "--config", str(path), "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: managed store 'managed' (type sql) failed to start: "), last


def test_tls(tmp_path, make_event):
    cert, key = self_signed(tmp_path)
    config = write_site(tmp_path, tls={"cert": cert.name, "key": key.name})
    trust = ssl.create_default_context(cafile=str(cert))
    with gateway_process(config, tls=trust) as (url, proc):
        with httpx.Client(verify=trust) as client:
            r = client.post(f"{url}/v1/ingest/managed", content=encode_array([make_event()]))
            assert r.json()["accepted"] == 1
            assert client.get(f"{url}/v1/healthz").json()["status"] == "ok"
        with pytest.raises(httpx.ConnectError):  # a client that does not trust it is refused
            httpx.get(f"{url}/v1/healthz")
        with pytest.raises(httpx.TransportError):  # and plain HTTP is not served
            httpx.get(url.replace("https", "http") + "/v1/healthz")
        stop(proc)
