"""POST /v1/ingest/events: per-event results, 202 only once on disk, limits, a full spool."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from tests.helpers.gateway import running
from tests.helpers.sidecar import Collect, ids, wait_for
from wafermon import decode_batch, encode_array, encode_ndjson, hookimpl, to_json_dict
from wafermon.spool import verify
from wafermon_hosts.common.limits import DISCARD_BYTES

INGEST = "/v1/ingest/events"
NDJSON = {"content-type": "application/x-ndjson"}


def spooled(app) -> list:
    """Every event in the sidecar's spool, oldest record first (read from disk)."""
    spool = app.state.sidecar.spool
    return [e for _seq, payload in spool.read(0, 2**30) for e in decode_batch(payload).events]


async def test_mixed_batch_reports_the_bad_events_and_spools_the_good_ones(
    start_sidecar, make_event
):
    a, b = make_event(entity_id="lot-1"), make_event(entity_id="lot-2")
    bad_kind = {**to_json_dict(make_event()), "kind": "exploded"}
    no_time = to_json_dict(make_event())
    del no_time["time"]
    body = orjson.dumps([to_json_dict(a), bad_kind, to_json_dict(b), no_time])
    async with start_sidecar() as (client, app):
        r = await client.post(INGEST, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 202
        data = r.json()
        assert (data["accepted"], data["rejected"]) == (2, 2)
        # One result per event not accepted, in body order; accepted events need none.
        assert [x["index"] for x in data["results"]] == [1, 3]
        assert data["results"][0] == {
            "index": 1,
            "event_id": bad_kind["event_id"],
            "status": "rejected",
            "errors": data["results"][0]["errors"],
        }
        assert data["results"][0]["errors"][0]["path"] == "$.kind"
        assert data["results"][1]["errors"] == [
            {"path": "$.time", "message": "required field missing"}
        ]
        assert ids(spooled(app)) == ids([a, b])  # one record, only the valid events
        assert app.state.sidecar.spool.last_seq == 1
        await wait_for(lambda: ids(Collect.got["a"]) == ids([a, b]))


async def test_one_event_an_array_ndjson_and_the_batch_path_are_all_read(sc_client, make_event):
    single = orjson.dumps(to_json_dict(make_event()), option=orjson.OPT_INDENT_2)
    r = await sc_client.post(INGEST, content=single)  # httpx sends no Content-Type for bytes
    assert (r.status_code, r.json()["accepted"]) == (202, 1)
    r = await sc_client.post(INGEST, content=encode_array([make_event(), make_event()]))
    assert r.json()["accepted"] == 2
    r = await sc_client.post(INGEST, content=encode_ndjson([make_event()] * 3), headers=NDJSON)
    assert r.json()["accepted"] == 3
    r = await sc_client.post("/v1/ingest/events:batch", content=encode_ndjson([make_event()]))
    assert (r.status_code, r.json()["accepted"]) == (202, 1)
    r = await sc_client.post(INGEST, content=encode_array([make_event()]), headers=NDJSON)
    assert r.status_code == 202  # the body decides the format; the type is only checked
    await wait_for(lambda: len(Collect.got["a"]) == 8)


async def test_nothing_valid_is_400_with_per_event_results_and_nothing_written(start_sidecar):
    body = b'{"kind": "started"}\n{not json\n'
    async with start_sidecar() as (client, app):
        r = await client.post(INGEST, content=body, headers=NDJSON)
        assert r.status_code == 400
        data = r.json()
        assert data["error"] == "no event in the body is valid; nothing was stored"
        assert (data["accepted"], data["rejected"]) == (0, 2)
        assert [x["status"] for x in data["results"]] == ["rejected", "rejected"]
        assert data["results"][1]["errors"][0]["path"] == "$"
        assert "not valid JSON" in data["results"][1]["errors"][0]["message"]
        assert app.state.sidecar.spool.last_seq == 0


class ResponseWatch:
    """ASGI wrapper recording the spool's state at the moment the response starts."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: list[tuple[int, int, list]] = []

    async def __call__(self, scope, receive, send):
        async def watched(message):
            if message["type"] == "http.response.start" and scope["type"] == "http":
                spool = self.app.state.sidecar.spool
                summaries, _ = verify(spool.directory)  # what is in the files right now
                self.seen.append((spool.last_seq, spool.fsyncs, summaries))
            await send(message)

        await self.app(scope, receive, watched)


async def test_202_is_sent_only_after_the_record_is_fsynced(build_sidecar_app, make_event):
    app = build_sidecar_app()
    watch = ResponseWatch(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=watch)
        async with httpx.AsyncClient(transport=transport, base_url="http://sc") as client:
            for n in range(1, 4):
                r = await client.post(INGEST, content=encode_array([make_event()]))
                assert r.status_code == 202
                last_seq, fsyncs, summaries = watch.seen[-1]
                assert last_seq == n  # durable seq advanced before the first response byte
                assert fsyncs >= n
                assert sum(s["records"] for s in summaries) == n  # and the record is in the file


async def test_concurrent_requests_share_fsyncs(start_sidecar, make_event):
    """Group commit: 32 requests at once need fewer fsyncs than appends."""
    async with start_sidecar() as (client, app):
        bodies = [encode_array([make_event()]) for _ in range(32)]
        answers = await asyncio.gather(*(client.post(INGEST, content=b) for b in bodies))
        assert {r.status_code for r in answers} == {202}
        spool = app.state.sidecar.spool
        assert spool.last_seq == 32
        assert spool.fsyncs < 32
        metrics = (await client.get("/metrics")).text
        assert "wafermon_sidecar_spool_appends_total 32.0" in metrics
        assert f"wafermon_sidecar_spool_fsyncs_total {float(spool.fsyncs)}" in metrics


async def test_unsupported_content_type_is_415(sc_client, make_event):
    r = await sc_client.post(
        INGEST, content=encode_array([make_event()]), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 415
    assert "text/csv" in r.json()["error"]


async def test_body_over_the_limit_is_413_by_content_length_and_while_streaming(
    start_sidecar, make_event
):
    sent = []

    async def chunks():
        for _ in range(6000):
            sent.append(1)
            yield b" " * 512

    async with start_sidecar(sidecar={"max_body_bytes": "4KiB"}) as (client, app):
        big = encode_array([make_event() for _ in range(40)])
        r = await client.post(INGEST, content=big)
        assert r.status_code == 413
        assert "4096" in r.json()["error"]
        r = await client.post(INGEST, content=chunks())
        assert r.status_code == 413
        # refused after 4 KiB, the rest read and dropped up to DISCARD_BYTES, not all 3 MiB
        assert len(sent) * 512 <= 4096 + DISCARD_BYTES + 2 * 512
        assert app.state.sidecar.spool.last_seq == 0
        assert (await client.post(INGEST, content=encode_array([make_event()]))).status_code == 202


async def test_more_events_than_max_batch_events_is_422(start_sidecar, make_event):
    async with start_sidecar(sidecar={"max_batch_events": 3}) as (client, _app):
        r = await client.post(INGEST, content=encode_array([make_event() for _ in range(4)]))
        assert r.status_code == 422
        assert "limit of 3" in r.json()["error"]
        r = await client.post(INGEST, content=encode_array([make_event() for _ in range(3)]))
        assert r.status_code == 202


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"[1, 2", "not valid JSON"),
        (b"   ", "empty body"),
        (b"[" + b'"\xff\xfe"' + b"]", "not valid JSON"),  # invalid UTF-8 inside an array
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),  # nested beyond orjson's limit
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "not valid JSON"),  # deep object
        (b"\xff\xfe\xfa\n\x80\x81\n", "not valid JSON"),  # NDJSON lines that are not UTF-8
        (b"\x00\x01\x02", "not valid JSON"),
    ],
    ids=["truncated", "empty", "utf8-array", "deep-array", "deep-object", "utf8-ndjson", "binary"],
)
async def test_unreadable_bodies_are_400_and_the_sidecar_keeps_serving(
    sc_client, make_event, body, where
):
    r = await sc_client.post(INGEST, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    data = r.json()
    problems = data.get("problems") or [e for x in data["results"] for e in x["errors"]]
    assert any(where in p["message"] for p in problems), data
    assert (await sc_client.post(INGEST, content=encode_array([make_event()]))).status_code == 202


async def test_deeply_nested_metadata_is_rejected_per_event(sc_client, make_event):
    # 300 levels decode (orjson reads up to 1024) but are deeper than orjson will encode.
    deep = b'{"x":' * 300 + b"{}" + b"}" * 300
    template = orjson.dumps({**to_json_dict(make_event()), "metadata": "DEEP"})
    event = template.replace(b'"DEEP"', deep)
    good = orjson.dumps(to_json_dict(make_event()))
    r = await sc_client.post(INGEST, content=event + b"\n" + good)
    assert r.status_code == 202
    assert r.json()["accepted"] == 1
    assert [(x["index"], x["status"]) for x in r.json()["results"]] == [(0, "rejected")]
    assert r.json()["results"][0]["errors"][0]["path"] == "$.metadata"


async def test_a_full_spool_answers_503_and_loses_nothing_it_acknowledged(
    start_sidecar, make_event
):
    """A backend is down, the spool fills up: 503 with Retry-After, then recovery."""
    sidecar = {
        "spool": {"max_bytes": "64KiB", "segment_bytes": "8KiB"},
        "max_body_bytes": "16KiB",
    }
    async with start_sidecar(sidecar=sidecar) as (client, app):
        Collect.down.add("a")
        acknowledged, refused = [], None
        for _ in range(200):
            events = [make_event() for _ in range(5)]
            r = await client.post(INGEST, content=encode_array(events))
            if r.status_code == 503:
                refused = r
                break
            assert r.status_code == 202
            acknowledged += events
        assert refused is not None, "the spool never filled up"
        assert refused.headers["retry-after"].isdigit()
        assert "full" in refused.json()["error"]
        spool = app.state.sidecar.spool
        assert spool.last_seq == len(acknowledged) // 5  # the refused request wrote nothing
        metrics = (await client.get("/metrics")).text
        assert 'wafermon_sidecar_refused_requests_total{reason="spool_full"} 1.0' in metrics

        Collect.down.discard("a")  # the backend is back: it catches up, the spool frees space
        await wait_for(lambda: app.state.sidecar.router.lag("a") == 0)
        assert ids(Collect.got["a"]) == ids(acknowledged)
        late = [make_event()]
        assert (await client.post(INGEST, content=encode_array(late))).status_code == 202
        await wait_for(lambda: ids(Collect.got["a"]) == ids(acknowledged + late))


async def test_after_shutdown_began_ingest_is_503(start_sidecar, make_event):
    async with start_sidecar() as (client, app):
        app.state.sidecar.stop_accepting()
        r = await client.post(INGEST, content=encode_array([make_event()]))
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        assert "shutting down" in r.json()["error"]
        health = await client.get("/v1/healthz")
        assert (health.status_code, health.json()["status"]) == (503, "stopping")


class DropTransform:
    """Drops events of entities named drop-*, on the sidecar only; tags the rest."""

    hosts: list[str] = []

    @hookimpl
    def transform_events(self, events, host, site_id):
        import attrs

        self.hosts.append(host)
        return [
            attrs.evolve(e, metadata={**e.metadata, "via": site_id})
            for e in events
            if not e.entity.id.startswith("drop-")
        ]


async def test_transform_events_runs_on_the_sidecar_and_dropped_events_are_reported(
    start_sidecar, sc_plugins, make_event
):
    transform = DropTransform()
    sc_plugins.register(transform, "drop")
    keep, drop = make_event(entity_id="keep-1"), make_event(entity_id="drop-1")
    async with start_sidecar() as (client, app):
        r = await client.post(INGEST, content=encode_array([keep, drop]))
        assert r.status_code == 202
        assert r.json()["accepted"] == 1
        assert [(x["index"], x["status"]) for x in r.json()["results"]] == [(1, "rejected")]
        assert r.json()["results"][0]["errors"][0]["message"] == (
            "dropped by a transform_events plugin"
        )
        (stored,) = spooled(app)
        assert (stored.event_id, stored.metadata["via"]) == (keep.event_id, "fab1")
        r = await client.post(INGEST, content=encode_array([make_event(entity_id="drop-2")]))
        assert r.status_code == 400  # everything dropped: nothing accepted
    assert transform.hosts == ["sidecar", "sidecar"]


async def test_the_spool_directory_vanishing_is_503_and_healthz_down(
    start_sidecar, make_event, monkeypatch
):
    import shutil

    from wafermon_hosts.sidecar import runtime

    monkeypatch.setattr(runtime, "DIR_CHECK_S", 0.0)  # checked on every request, not each second
    async with start_sidecar(sidecar={"drain_timeout": "100ms"}) as (client, app):
        assert (await client.post(INGEST, content=encode_array([make_event()]))).status_code == 202
        shutil.rmtree(app.state.sidecar.spool_dir)
        r = await client.post(INGEST, content=encode_array([make_event()]))
        assert r.status_code == 503
        assert "is gone" in r.json()["error"]
        health = await client.get("/v1/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "down"
        assert health.json()["spool"]["ok"] is False


async def test_a_second_app_on_the_same_spool_cannot_start(build_sidecar_app):
    from wafermon_hosts.sidecar.runtime import SidecarStartError

    first = build_sidecar_app()
    async with running(first):
        second = build_sidecar_app()
        with pytest.raises(SidecarStartError, match="another sidecar holds"):
            async with running(second):
                pass
