"""The recording sidecar answers as the real sidecar does and obeys its controls."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from wafermon_conformance.recorder import Recorder

EVENT = {
    "schema_version": 1,
    "event_id": "0b7e1f5c-3c1a-4d2e-9f60-2a8c5e4b7d10",
    "kind": "started",
    "time": "2026-11-28T09:30:00Z",
    "site_id": "fab1",
    "app": {"name": "a"},
    "entity": {"type": "job", "id": "j1"},
}
BAD = {**EVENT, "event_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "kind": "finshed"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def body(*events: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


@pytest.fixture
def recorder():
    with Recorder() as running:
        yield running


def test_per_event_verdicts_as_the_sidecar(recorder):
    with httpx.Client(base_url=recorder.url) as client:
        answer = client.post("/v1/ingest/events", content=body(EVENT, BAD), headers=NDJSON)
        assert answer.status_code == 202
        assert answer.json()["accepted"] == 1
        rejected = answer.json()["results"][1]
        assert rejected["status"] == "rejected"
        assert rejected["errors"][0]["path"] == "$.kind"
        nothing = client.post("/v1/ingest/events", content=body(BAD), headers=NDJSON)
        assert nothing.status_code == 400
        assert nothing.json()["error"] == "no event in the body is valid; nothing was stored"
        assert client.post("/v1/ingest/events", content=b"{nope", headers=NDJSON).status_code == 400
        wrong = client.post(
            "/v1/ingest/events", content=body(EVENT), headers={"Content-Type": "text/plain"}
        )
        assert wrong.status_code == 415
    assert [r.status for r in recorder.ingest_requests()] == [202, 400, 400, 415]
    accepted = recorder.accepted_events()
    assert [event.document for _request, event in accepted] == [EVENT]
    assert recorder.requests[0].headers["content-type"] == "application/x-ndjson"


def test_refuse_answers_503_with_retry_after_then_serves_again(recorder):
    recorder.refuse(1, 503, retry_after=2)
    with httpx.Client(base_url=recorder.url) as client:
        first = client.post("/v1/ingest/events", content=body(EVENT), headers=NDJSON)
        assert (first.status_code, first.headers["retry-after"]) == (503, "2")
        assert (
            client.post("/v1/ingest/events", content=body(EVENT), headers=NDJSON).status_code == 202
        )
    assert [r.retry_after for r in recorder.ingest_requests()] == [2, None]


def test_down_refuses_connections_and_cuts_open_ones_then_up_on_the_same_port(recorder):
    port = recorder.port
    with httpx.Client(base_url=recorder.url) as client:  # keeps its connection alive
        assert (
            client.post("/v1/ingest/events", content=body(EVENT), headers=NDJSON).status_code == 202
        )
        recorder.down()
        with pytest.raises(httpx.TransportError):
            client.post("/v1/ingest/events", content=body(EVENT), headers=NDJSON)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        recorder.up()
        assert recorder.port == port
        deadline = time.monotonic() + 5
        while True:
            try:
                answer = client.post("/v1/ingest/events", content=body(EVENT), headers=NDJSON)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
        assert answer.status_code == 202
    assert len(recorder.accepted_events()) == 2


def test_down_from_the_start_holds_the_port():
    recorder = Recorder().start(up=False)
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", recorder.port), timeout=2)
        recorder.up()
        assert httpx.get(recorder.url + "/v1/healthz").json()["status"] == "ok"
    finally:
        recorder.stop()


def test_chunked_bodies_are_read_and_oversized_ones_refused(recorder):
    def chunks():
        yield body(EVENT)[:10]
        yield body(EVENT)[10:]

    with httpx.Client(base_url=recorder.url) as client:
        answer = client.post("/v1/ingest/events", content=chunks(), headers=NDJSON)
        assert answer.status_code == 202
    assert recorder.requests[0].headers["transfer-encoding"] == "chunked"
    with socket.create_connection(("127.0.0.1", recorder.port), timeout=5) as raw:
        raw.sendall(
            b"POST /v1/ingest/events HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-ndjson\r\nContent-Length: 99999999\r\n\r\n"
        )
        assert raw.recv(100).startswith(b"HTTP/1.1 413 ")
