"""POST /v1/query/external and GET /v1/data/unified: one source, and all of them merged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from wafermon import encode_array
from wafermon_backend_filesystem import EmitterSettings, FilesystemEmitter


async def write_archive(root: Path, events) -> None:
    """Put events where a filesystem source reads them, as the filesystem backend writes them."""
    emitter = FilesystemEmitter("archive", EmitterSettings(root=root, fsync=False))
    await emitter.start()
    try:
        await emitter.emit(events)
    finally:
        await emitter.close()


@pytest.fixture
def archive_root(tmp_path: Path) -> Path:
    return tmp_path / "archive"


def fs_source(root: Path, name: str = "archive") -> dict:
    return {"name": name, "type": "filesystem", "config": {"root": str(root)}}


def event_ids(events) -> list[str]:
    return [str(e.event_id) for e in events]


# -- POST /v1/query/external ----------------------------------------------------------------------


async def test_external_query_runs_one_named_source(start_gateway, archive_root, make_event):
    archived = [make_event(app="etch"), make_event(app="litho"), make_event(app="etch")]
    await write_archive(archive_root, archived)
    async with start_gateway(sources=[fs_source(archive_root)]) as (client, _app):
        body = {"source": "archive", "query": {"app": "etch", "limit": 1}}
        page = (await client.post("/v1/query/external", json=body)).json()
        assert [e["event_id"] for e in page["events"]] == event_ids(archived[:1])
        body["query"]["cursor"] = page["next_cursor"]
        page = (await client.post("/v1/query/external", json=body)).json()
        assert [e["event_id"] for e in page["events"]] == event_ids(archived[2:])
        assert page["next_cursor"] is None


async def test_external_query_can_read_the_managed_store(client, make_event, t0):
    events = [make_event(), make_event()]
    await client.post("/v1/ingest/managed", content=encode_array(events))
    start = (t0 - timedelta(hours=1)).isoformat()
    body = {"source": "managed", "query": {"start": start, "site_id": "fab1"}}
    page = (await client.post("/v1/query/external", json=body)).json()
    assert [e["event_id"] for e in page["events"]] == event_ids(events)


async def test_external_unknown_source_is_404(client):
    r = await client.post("/v1/query/external", json={"source": "nope"})
    assert r.status_code == 404
    assert "managed" in r.json()["error"]


async def test_external_source_errors_are_502_and_timeouts_504(start_gateway):
    sources = [
        {"name": "broken", "type": "failing"},
        {"name": "slow", "type": "slow", "config": {"delay": 5}},
    ]
    async with start_gateway(gateway={"source_timeout": "200ms"}, sources=sources) as (client, _):
        r = await client.post("/v1/query/external", json={"source": "broken"})
        assert r.status_code == 502
        assert "refused the connection" in r.json()["error"]
        r = await client.post("/v1/query/external", json={"source": "slow"})
        assert r.status_code == 504
        assert "0.2s" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"source": "managed", "query": {"limit": 0}}, "$.query.limit"),
        ({"source": "managed", "query": {"start": "soon"}}, "$.query.start"),
        ({"source": "managed", "query": {"status": "exploded"}}, "$.query.status"),
        ({"source": "managed", "query": {"colour": "red"}}, "$.query.colour"),
        ({"source": "managed", "query": {"cursor": "zzz"}}, "$.query.cursor"),
        ({"source": "managed", "query": []}, "$.query"),
        ({"source": 7}, "$.source"),
        ({"sauce": "managed"}, "$.sauce"),
        ([], "$"),
    ],
)
async def test_external_bad_request_is_400_with_the_path(client, body, path):
    r = await client.post("/v1/query/external", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["problems"][0]["path"] == path


# -- GET /v1/data/unified -----------------------------------------------------------------------


async def test_unified_merges_in_time_order_and_dedupes_by_event_id(
    start_gateway, archive_root, make_event
):
    older = [make_event() for _ in range(3)]  # only in the archive
    both = [make_event() for _ in range(2)]  # ingested and archived
    newer = [make_event() for _ in range(2)]  # only in the managed store
    await write_archive(archive_root, older + both)
    async with start_gateway(sources=[fs_source(archive_root)]) as (client, _app):
        await client.post("/v1/ingest/managed", content=encode_array(both + newer))
        r = await client.get("/v1/data/unified")
        assert r.status_code == 200
        data = r.json()
        assert [e["event_id"] for e in data["events"]] == event_ids(older + both + newer)
        assert data["sources"] == {
            "managed": {"status": "ok", "count": 4},
            "archive": {"status": "ok", "count": 5},
        }
        assert data["next_cursor"] is None
        only = (await client.get("/v1/data/unified?sources=archive")).json()
        assert list(only["sources"]) == ["archive"]
        assert len(only["events"]) == 5


async def test_unified_pages_have_no_gaps_or_repeats(start_gateway, archive_root, make_event):
    events = [make_event() for _ in range(23)]
    await write_archive(archive_root, events[::2] + events[5:9])
    async with start_gateway(sources=[fs_source(archive_root)]) as (client, _app):
        await client.post("/v1/ingest/managed", content=encode_array(events[1::2]))
        seen, cursor = [], None
        while True:
            url = "/v1/data/unified?limit=5" + (f"&cursor={cursor}" if cursor else "")
            page = (await client.get(url)).json()
            assert len(page["events"]) <= 5
            seen += [e["event_id"] for e in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == event_ids(events)


async def test_unified_filters_apply_to_every_source(start_gateway, archive_root, make_event):
    await write_archive(archive_root, [make_event(app="etch"), make_event(app="litho")])
    async with start_gateway(sources=[fs_source(archive_root)]) as (client, _app):
        await client.post(
            "/v1/ingest/managed",
            content=encode_array([make_event(app="etch", kind="failed"), make_event(app="litho")]),
        )
        data = (await client.get("/v1/data/unified?app=etch")).json()
        assert {e["app"]["name"] for e in data["events"]} == {"etch"}
        assert len(data["events"]) == 2
        failed = (await client.get("/v1/data/unified?status=failed")).json()
        assert [e["kind"] for e in failed["events"]] == ["failed"]


async def test_a_failing_and_a_slow_source_never_sink_the_answer(
    start_gateway, archive_root, make_event
):
    archived = [make_event()]
    await write_archive(archive_root, archived)
    sources = [
        fs_source(archive_root),
        {"name": "broken", "type": "failing"},
        {"name": "slow", "type": "slow", "config": {"delay": 10}},
        {"name": "down", "type": "broken-start"},
    ]
    async with start_gateway(gateway={"source_timeout": "300ms"}, sources=sources) as (
        client,
        _app,
    ):
        ingested = [make_event()]
        await client.post("/v1/ingest/managed", content=encode_array(ingested))
        r = await client.get("/v1/data/unified")
        assert r.status_code == 200
        data = r.json()
        assert [e["event_id"] for e in data["events"]] == event_ids(archived + ingested)
        status = data["sources"]
        assert status["managed"] == {"status": "ok", "count": 1}
        assert status["archive"] == {"status": "ok", "count": 1}
        assert status["broken"]["status"] == "failed"
        assert "refused the connection" in status["broken"]["error"]
        assert status["slow"] == {"status": "timed_out", "error": "no answer within 0.3s"}
        assert status["down"]["status"] == "failed"
        assert "cannot reach the archive" in status["down"]["error"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("sources=managed,nope", "sources"),
        ("sources=,", "sources"),
        ("limit=10001", "limit"),
        ("entity_type=lot", "entity_type"),
        ("cursor=abc", "cursor"),
        ("since=never", "since"),
        ("color=red", "color"),
    ],
)
async def test_unified_bad_parameters_are_400(client, query, param):
    r = await client.get(f"/v1/data/unified?{query}")
    assert r.status_code == 400, r.text
    assert r.json()["problems"][0]["path"] == param
