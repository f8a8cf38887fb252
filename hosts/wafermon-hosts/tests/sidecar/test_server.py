"""The real ``wafermon sidecar`` process: serve, refuse bad input, SIGTERM, restart, TLS, --check."""

from __future__ import annotations

import ssl
import subprocess
import time
from http.client import HTTPConnection

import httpx
import orjson

from tests.helpers.gateway_process import self_signed
from tests.helpers.sidecar import (
    WAFERMON,
    Proc,
    event_ids,
    filesystem_event_ids,
    ndjson_batch,
    processes,
    site,
    write_yaml,
)

INGEST = "/v1/ingest/events"
NDJSON = {"content-type": "application/x-ndjson"}


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_serves_drains_on_sigterm_and_exits_0(tmp_path):
    config = write_yaml(
        tmp_path / "site.yaml", site(tmp_path, tokens={"ingest": "sdk-tok", "read": "ops-tok"})
    )
    body = ndjson_batch(50)
    with processes() as procs:
        sc = Proc("sidecar", config, log_dir=tmp_path).start()
        procs.append(sc)
        auth = {"Authorization": "Bearer sdk-tok", **NDJSON}
        r = httpx.post(f"{sc.url}{INGEST}", content=body, headers=auth)
        assert (r.status_code, r.json()["accepted"]) == (202, 50)
        assert httpx.post(f"{sc.url}{INGEST}", content=body).status_code == 401
        assert httpx.get(f"{sc.url}/v1/healthz").json() == {"status": "ok"}  # no read token
        ops = {"Authorization": "Bearer ops-tok"}
        health = httpx.get(f"{sc.url}/v1/healthz", headers=ops).json()
        assert health["spool"]["last_seq"] == 1
        assert "wafermon_sidecar_spool_fsyncs_total" in httpx.get(f"{sc.url}/metrics").text
        assert sc.terminate() == 0
        logs = sc.log_lines()
    events = [line["event"] for line in logs]
    assert "sidecar started" in events
    assert events[-4:] == [
        "sidecar stopping: new ingest requests get 503",
        "spool drained",
        "sidecar stopped",
        "sidecar exited",
    ]
    (ingest,) = [x for x in logs if x["event"] == "request" and x["status"] == 202]
    assert (ingest["method"], ingest["path"]) == ("POST", INGEST)
    assert "sdk-tok" not in sc.log()
    assert "ops-tok" not in sc.log()
    assert sorted(filesystem_event_ids(tmp_path / "fs")) == sorted(event_ids(body))


def test_a_stop_with_a_backend_down_keeps_its_events_for_the_next_start(tmp_path):
    """SIGTERM gives up draining after drain_timeout; after a restart delivery resumes from
    each backend's acknowledged position: the good backend gets nothing twice."""
    blocked = tmp_path / "blocked"
    blocked.write_text("a regular file where the backend's root directory should be")
    backends = [
        {"name": "good", "type": "filesystem", "config": {"root": str(tmp_path / "good")}},
        {"name": "late", "type": "filesystem", "config": {"root": str(blocked)}},
    ]
    config = write_yaml(
        tmp_path / "site.yaml", site(tmp_path, backends=backends, drain_timeout="1s")
    )
    first, second = ndjson_batch(20), ndjson_batch(20)
    with processes() as procs:
        sc = Proc("sidecar", config, log_dir=tmp_path).start()
        procs.append(sc)
        assert httpx.post(f"{sc.url}{INGEST}", content=first).status_code == 202
        wait_until(lambda: httpx.get(f"{sc.url}/v1/healthz").json()["status"] == "degraded")
        late = httpx.get(f"{sc.url}/v1/healthz").json()["backends"]["late"]
        assert late["breaker"] == "open"
        assert late["lag"] == 1
        assert "failed to start" in late["last_error"]
        began = time.monotonic()
        assert sc.terminate() == 0
        assert time.monotonic() - began < 8  # drain_timeout 1 s, not forever
        assert "drain timed out" in sc.log()

        blocked.unlink()  # the operator fixes the backend
        sc.start()
        assert httpx.post(f"{sc.url}{INGEST}", content=second).status_code == 202
        wait_until(lambda: all(b["lag"] == 0 for b in backend_states(sc.url).values()))
        assert sc.terminate() == 0
    assert sorted(filesystem_event_ids(tmp_path / "good")) == sorted(event_ids(first + second))
    assert sorted(filesystem_event_ids(blocked)) == sorted(event_ids(first + second))


def backend_states(url: str) -> dict:
    return httpx.get(f"{url}/v1/healthz").json()["backends"]


def test_bad_input_gets_a_clear_4xx_and_the_sidecar_keeps_serving(tmp_path):
    config = write_yaml(tmp_path / "site.yaml", site(tmp_path, max_body_bytes="1MiB"))
    url_events = []
    with processes() as procs, httpx.Client(timeout=30) as http:
        sc = Proc("sidecar", config, log_dir=tmp_path).start()
        procs.append(sc)
        url = f"{sc.url}{INGEST}"
        cases = [
            (b"[1, 2", {"content-type": "application/json"}, 400),
            (b'{"kind": "started"}', {"content-type": "application/json"}, 400),
            (b"\xff\xfe\x00garbage", NDJSON, 400),
            (b'["\xc3\x28"]', {"content-type": "application/json"}, 400),
            (b"[" * 200_000 + b"]" * 200_000, {"content-type": "application/json"}, 400),
            (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, NDJSON, 400),
            (b"", NDJSON, 400),
            (b"a,b,c\n1,2,3\n", {"content-type": "text/csv"}, 415),
            (b"<event/>", {"content-type": "application/xml"}, 415),
            # Up to a MiB over the limit the sidecar reads and drops the rest before it answers:
            # a client writes its whole body first, and a close on unread bytes resets the
            # connection, losing the 413 (a much larger body can still meet that reset).
            (b" " * (2**20 + 2**19), NDJSON, 413),
        ]
        for body, headers, status in cases:
            r = http.post(url, content=body, headers=headers)
            assert r.status_code == status, (body[:40], r.text[:300])
            assert r.headers["content-type"] == "application/json"
            assert r.json()["error"]

        def chunks():  # no Content-Length: refused while streaming, by a slow client
            for n in range(1024 + 64):
                if n >= 1024:
                    time.sleep(0.005)  # still writing well after the sidecar has refused
                yield b" " * 1024

        # The refused rest is read and dropped, so the connection is not reset under the
        # client's writes, and it stays open for the next request.
        conn = HTTPConnection("127.0.0.1", int(sc.url.rsplit(":", 1)[1]), timeout=30)
        conn.request("POST", INGEST, body=chunks(), headers=NDJSON, encode_chunked=True)
        refused = conn.getresponse()
        assert refused.status == 413
        assert "larger than the limit of 1048576 bytes" in orjson.loads(refused.read())["error"]
        good = ndjson_batch(10)
        url_events += event_ids(good)
        conn.request("POST", INGEST, body=good, headers=NDJSON)
        assert conn.getresponse().status == 202
        conn.close()
        assert sc.proc.poll() is None
        statuses = [x["status"] for x in sc.log_lines() if x["event"] == "request"]
        assert 500 not in statuses
        assert sc.terminate() == 0
    assert sorted(filesystem_event_ids(tmp_path / "fs")) == sorted(url_events)


def test_check_validates_and_exits(tmp_path):
    config = write_yaml(tmp_path / "site.yaml", site(tmp_path))
    ok = subprocess.run([WAFERMON, "sidecar", "--config", str(config), "--check"], text=True,
                        capture_output=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "OK (site fab1); sidecar would serve http://127.0.0.1:17000" in ok.stdout
    assert "backends: archive (filesystem)" in ok.stdout

    bad = write_yaml(tmp_path / "bad.yaml", site(tmp_path, max_batch_events="many"))
    result = subprocess.run(
        [WAFERMON, "sidecar", "--config", str(bad), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"error: {bad}: invalid config" in result.stderr
    assert "  - sidecar.max_batch_events (line 11): expected an integer" in result.stderr


def test_a_spool_held_by_another_sidecar_exits_1_naming_the_lock(tmp_path):
    config = write_yaml(tmp_path / "site.yaml", site(tmp_path))
    with processes() as procs:
        procs.append(Proc("sidecar", config, log_dir=tmp_path).start())
        second = Proc("sidecar", config, log_dir=tmp_path)
        second.start(wait=False)
        procs.append(second)
        assert second.proc.wait(60) == 1
        last = second.log().strip().splitlines()[-1]
        assert last.startswith(f"error: spool {tmp_path / 'spool'} cannot be opened: ")
        assert "another sidecar holds" in last


def test_tls(tmp_path):
    cert, key = self_signed(tmp_path)
    config = write_yaml(
        tmp_path / "site.yaml", site(tmp_path, tls={"cert": str(cert), "key": str(key)})
    )
    trust = ssl.create_default_context(cafile=str(cert))
    with processes() as procs:
        sc = Proc("sidecar", config, log_dir=tmp_path)
        sc.url = sc.url.replace("http:", "https:")
        procs.append(sc)
        sc.start(wait=False)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{sc.url}/v1/healthz", verify=trust).status_code == 200:
                    break
            except httpx.TransportError:
                assert sc.proc.poll() is None, sc.log()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        body = ndjson_batch(3)
        r = httpx.post(f"{sc.url}{INGEST}", content=body, verify=trust)
        assert orjson.loads(r.content)["accepted"] == 3
        try:
            httpx.get(sc.url.replace("https", "http") + "/v1/healthz")
            raise AssertionError("plain HTTP was served")
        except httpx.TransportError:
            pass
        assert sc.terminate() == 0
