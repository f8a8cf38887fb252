"""POST /v1/ingest/managed: per-event outcomes, limits, content types, the store going away."""

from __future__ import annotations

import attrs
import orjson
import pytest

from tests.helpers.gateway import FlakySqlStore
from wafermon import encode_array, encode_ndjson, hookimpl, to_json_dict
from wafermon_hosts.common.limits import DISCARD_BYTES

INGEST = "/v1/ingest/managed"


async def test_mixed_batch_reports_what_was_not_stored_and_keeps_the_good_ones(client, make_event):
    a, b = make_event(entity_id="lot-1"), make_event(entity_id="lot-2")
    bad_kind = {**to_json_dict(make_event()), "kind": "exploded"}
    no_time = to_json_dict(make_event())
    del no_time["time"]
    body = orjson.dumps([to_json_dict(a), bad_kind, to_json_dict(b), no_time, to_json_dict(a)])

    r = await client.post(INGEST, content=body, headers={"content-type": "application/json"})

    assert r.status_code == 200
    data = r.json()
    assert (data["accepted"], data["duplicates"], data["rejected"]) == (2, 1, 2)
    # One result per event not accepted, in body order; accepted events need none.
    assert [x["index"] for x in data["results"]] == [1, 3, 4]
    assert [x["status"] for x in data["results"]] == ["rejected", "rejected", "duplicate"]
    assert data["results"][0]["event_id"] == bad_kind["event_id"]
    assert data["results"][0]["errors"][0]["path"] == "$.kind"
    assert data["results"][1]["errors"] == [{"path": "$.time", "message": "required field missing"}]
    assert data["results"][2]["errors"] == []  # a duplicate is not an error

    jobs = (await client.get("/v1/jobs")).json()["items"]
    assert {j["entity_id"] for j in jobs} == {"lot-1", "lot-2"}


async def test_resending_a_batch_reports_duplicates(client, make_event):
    events = [make_event() for _ in range(3)]
    first = (await client.post(INGEST, content=encode_array(events))).json()
    again = (await client.post(INGEST, content=encode_array(events))).json()
    assert (first["accepted"], first["duplicates"]) == (3, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert [r["event_id"] for r in again["results"]] == [str(e.event_id) for e in events]


async def test_ndjson_single_object_and_no_content_type_are_read(client, make_event):
    events = [make_event(), make_event()]
    r = await client.post(
        INGEST, content=encode_ndjson(events), headers={"content-type": "application/x-ndjson"}
    )
    assert r.json()["accepted"] == 2
    single = orjson.dumps(to_json_dict(make_event()), option=orjson.OPT_INDENT_2)
    r = await client.post(INGEST, content=single)  # httpx sends no Content-Type for bytes
    assert r.json()["accepted"] == 1


async def test_unreadable_ndjson_line_is_rejected_alone(client, make_event):
    body = encode_ndjson([make_event()]) + b"{not json\n" + encode_ndjson([make_event()])
    data = (await client.post(INGEST, content=body)).json()
    assert data["accepted"] == 2
    assert [(x["index"], x["status"]) for x in data["results"]] == [(1, "rejected")]
    assert data["results"][0]["errors"][0]["path"] == "$"
    assert "not valid JSON" in data["results"][0]["errors"][0]["message"]


async def test_malformed_body_is_400_with_problems(client):
    r = await client.post(INGEST, content=b"[1, 2", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["problems"][0]["path"] == "$"
    r = await client.post(INGEST, content=b"   ")
    assert r.status_code == 400
    assert "empty body" in r.json()["problems"][0]["message"]


async def test_unsupported_content_type_is_415(client, make_event):
    r = await client.post(
        INGEST, content=encode_array([make_event()]), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 415
    assert "text/csv" in r.json()["error"]


async def test_body_over_the_limit_by_content_length_is_413(start_gateway, make_event):
    async with start_gateway(gateway={"max_body_bytes": "1KiB"}) as (client, _app):
        big = encode_array([make_event() for _ in range(20)])
        assert len(big) > 1024
        r = await client.post(INGEST, content=big)
        assert r.status_code == 413
        assert "1024" in r.json()["error"]
        small = encode_array([make_event()])
        assert (await client.post(INGEST, content=small)).status_code == 200


async def test_chunked_body_over_the_limit_is_413_while_streaming(start_gateway, make_event):
    sent = []

    async def chunks():
        # Without a Content-Length; the gateway must stop reading once past the limit.
        for _ in range(6000):
            sent.append(1)
            yield b" " * 512

    async with start_gateway(gateway={"max_body_bytes": "4KiB"}) as (client, _app):
        r = await client.post(INGEST, content=chunks())
        assert r.status_code == 413
        assert "content-length" not in {k.lower() for k in r.request.headers}
        # refused after 4 KiB, the rest read and dropped up to DISCARD_BYTES (so that the 413
        # reaches a client still writing), not all 3 MiB
        assert len(sent) * 512 <= 4096 + DISCARD_BYTES + 2 * 512


async def test_batch_over_max_batch_events_is_422(start_gateway, make_event):
    async with start_gateway(gateway={"max_batch_events": 3}) as (client, _app):
        r = await client.post(INGEST, content=encode_array([make_event() for _ in range(4)]))
        assert r.status_code == 422
        assert "limit of 3" in r.json()["error"]
        r = await client.post(INGEST, content=encode_array([make_event() for _ in range(3)]))
        assert r.status_code == 200


async def test_store_down_is_503_with_retry_after(start_gateway, flaky_backends, make_event):
    async with start_gateway(backends=flaky_backends) as (client, _app):
        FlakySqlStore.down = True
        r = await client.post(INGEST, content=encode_array([make_event()]))
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) > 0
        assert "database connection lost" in r.json()["error"]
        assert (await client.get("/v1/jobs")).status_code == 503
        FlakySqlStore.down = False
        r = await client.post(INGEST, content=encode_array([make_event()]))
        assert r.status_code == 200


class Enricher:
    """A transform_events plugin: tags every event with the line, drops the 'drop-me' app."""

    calls: list[tuple[str, str]] = []

    @hookimpl
    def transform_events(self, events, host, site_id):
        self.calls.append((host, site_id))
        return [
            attrs.evolve(e, metadata={**e.metadata, "line": "L3"})
            for e in events
            if e.app.name != "drop-me"
        ]


async def test_transform_events_runs_with_host_gateway(start_gateway, plugins, make_event):
    enricher = Enricher()
    plugins.register(enricher, "enricher")
    async with start_gateway() as (client, _app):
        keep, drop = make_event(entity_id="kept"), make_event(app="drop-me")
        data = (await client.post(INGEST, content=encode_array([keep, drop]))).json()
        assert enricher.calls == [("gateway", "fab1")]
        assert data["accepted"] == 1
        assert [(x["index"], x["status"]) for x in data["results"]] == [(1, "rejected")]
        assert "transform_events" in data["results"][0]["errors"][0]["message"]
        detail = (await client.get("/v1/jobs/kept")).json()
        assert detail["events"][0]["metadata"] == {"line": "L3"}


@pytest.mark.parametrize("body", [b"[]", b"\n\n"])
async def test_empty_batches(client, body):
    r = await client.post(INGEST, content=body)
    if body == b"[]":
        assert r.json() == {"accepted": 0, "duplicates": 0, "rejected": 0, "results": []}
    else:
        assert r.status_code == 400


async def test_events_the_store_refuses_are_rejected_and_the_rest_kept(client, make_event):
    # The SQL store refuses U+0000 in text fields (PostgreSQL cannot hold it): a PermanentError
    # naming those events, after storing the others.
    good, refused = make_event(entity_id="fine"), make_event(entity_id="bad\x00id")
    data = (await client.post(INGEST, content=encode_array([good, refused]))).json()
    assert data["accepted"] == 1
    assert [(x["index"], x["status"]) for x in data["results"]] == [(1, "rejected")]
    assert "U+0000" in data["results"][0]["errors"][0]["message"]
    assert (await client.get("/v1/jobs/fine")).status_code == 200
