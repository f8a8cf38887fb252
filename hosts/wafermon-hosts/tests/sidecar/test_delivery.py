"""Delivery from the spool: rejects, fallbacks, late backends, restarts and the drain."""

from __future__ import annotations

import orjson

from tests.helpers.gateway import running
from tests.helpers.sidecar import Collect, ids, ndjson_batch, wait_for
from wafermon import encode_array
from wafermon_hosts.sidecar.runtime import MAX_DECODED_EVENTS

INGEST = "/v1/ingest/events"


async def test_a_permanent_reject_goes_to_the_dead_letter_file_with_the_reason(
    start_sidecar, make_event, tmp_path
):
    Collect.refuse.add("lot-bad")
    good, bad = make_event(entity_id="lot-ok"), make_event(entity_id="lot-bad")
    async with start_sidecar() as (client, app):
        assert (await client.post(INGEST, content=encode_array([good, bad]))).status_code == 202
        router = app.state.sidecar.router
        await wait_for(lambda: router.lag("a") == 0)
        state = (await client.get("/v1/healthz")).json()["backends"]["a"]
    assert ids(Collect.got["a"]) == ids([good])
    assert (state["delivered_events"], state["dead_lettered_events"]) == (1, 1)
    assert state["breaker"] == "closed"  # a reject is an answer, not an outage
    (line,) = (tmp_path / "dead-letter" / "a.jsonl").read_text().splitlines()
    entry = orjson.loads(line)
    assert entry["backend"] == "a"
    assert entry["reason"] == "a refuses entity ['lot-bad']"
    assert entry["event"]["event_id"] == str(bad.event_id)
    assert entry["rejected_at"]


async def test_a_reject_goes_to_the_fallback_backend_instead(start_sidecar, make_event, tmp_path):
    from tests.helpers.sidecar import filesystem_event_ids

    Collect.refuse.add("lot-bad")
    backends = [
        {"name": "gw", "type": "collect", "fallback": "quarantine"},
        {"name": "quarantine", "type": "filesystem", "config": {"root": "quarantine"}},
    ]
    good, bad = make_event(entity_id="lot-ok"), make_event(entity_id="lot-bad")
    async with start_sidecar(backends=backends, sidecar={"backends": ["gw"]}) as (client, app):
        await client.post(INGEST, content=encode_array([good, bad]))
        await wait_for(lambda: app.state.sidecar.router.lag("gw") == 0)
        state = app.state.sidecar.router.states["gw"]
        assert (state.delivered_events, state.fallback_events) == (1, 1)
    assert ids(Collect.got["gw"]) == ids([good])
    assert filesystem_event_ids(tmp_path / "quarantine") == ids([bad])  # and nothing else
    assert not (tmp_path / "dead-letter").exists()


async def test_a_backend_that_cannot_start_is_retried_and_then_gets_everything(
    start_sidecar, make_event
):
    Collect.broken_start.add("late")
    backends = [{"name": "late", "type": "collect"}, {"name": "ok", "type": "collect"}]
    events = [make_event() for _ in range(3)]
    async with start_sidecar(backends=backends) as (client, app):
        sc = app.state.sidecar
        assert sc.emitters["late"].started is False
        assert (await client.post(INGEST, content=encode_array(events))).status_code == 202
        await wait_for(lambda: sc.router.states["late"].retries >= 2)
        late = (await client.get("/v1/healthz")).json()["backends"]["late"]
        assert late["last_error"] == (
            "retryable: failed to start: RetryableError: late cannot reach its server"
        )
        assert late["lag"] == 1
        Collect.broken_start.discard("late")
        await wait_for(lambda: sc.router.lag("late") == 0)
        assert sc.emitters["late"].started is True
    assert ids(Collect.got["late"]) == ids(Collect.got["ok"]) == ids(events)


async def test_after_a_restart_each_backend_continues_from_its_acknowledged_position(
    build_sidecar_app, make_event
):
    backends = [{"name": "up", "type": "collect"}, {"name": "down", "type": "collect"}]
    kwargs = {"backends": backends, "sidecar": {"drain_timeout": "200ms"}}
    first, second = [make_event() for _ in range(4)], [make_event() for _ in range(2)]
    Collect.down.add("down")
    app = build_sidecar_app(**kwargs)
    async with running(app) as client:
        for event in first:
            await client.post(INGEST, content=encode_array([event]))
        await wait_for(lambda: app.state.sidecar.router.lag("up") == 0)
    # Stopped with "down" 4 records behind (the drain timed out); nothing was dropped.
    Collect.down.clear()
    app = build_sidecar_app(**kwargs)
    async with running(app) as client:
        router = app.state.sidecar.router
        assert router.states["up"].acked_seq == 4
        assert router.states["down"].acked_seq == 0
        await client.post(INGEST, content=encode_array(second))
        await wait_for(lambda: router.lag("up") == router.lag("down") == 0)
    assert ids(Collect.got["up"]) == ids(first + second)  # no repeats for the one that had acked
    assert ids(Collect.got["down"]) == ids(first + second)


async def test_shutdown_drains_what_was_acknowledged(build_sidecar_app, make_event):
    app = build_sidecar_app(
        backends=[{"name": "slow", "type": "collect", "config": {"delay": 0.2}}]
    )
    events = [make_event() for _ in range(3)]
    async with running(app) as client:
        for event in events:
            assert (await client.post(INGEST, content=encode_array([event]))).status_code == 202
    # The lifespan's shutdown waited for the slow backend to take everything.
    assert ids(Collect.got["slow"]) == ids(events)
    assert app.state.sidecar.router.lag("slow") == 0


async def test_decoded_events_kept_for_a_dead_backend_are_bounded(start_sidecar):
    backends = [{"name": "up", "type": "collect"}, {"name": "dead", "type": "collect"}]
    Collect.down.add("dead")
    async with start_sidecar(backends=backends, sidecar={"drain_timeout": "100ms"}) as (
        client,
        app,
    ):
        router = app.state.sidecar.router
        for n in range(1, 16):
            r = await client.post(INGEST, content=ndjson_batch(1000))
            assert r.status_code == 202
            await wait_for(lambda n=n: router.states["up"].acked_seq == n)
            cached = sum(len(v) for v in router._decoded.values())
            assert cached <= MAX_DECODED_EVENTS
        assert len(Collect.got["up"]) == 15_000
        assert router.lag("dead") == 15


async def test_a_failing_spool_ack_does_not_end_delivery_to_that_backend(start_sidecar, make_event):
    """The ack file cannot be written (its folder is gone, as on a failing disk): the backend
    shows the failure and an open circuit, and delivery resumes once the disk is back."""
    import shutil

    sidecar = {"retry": {"open_seconds": "100ms"}}
    async with start_sidecar(sidecar=sidecar) as (client, app):
        sc = app.state.sidecar
        acks = sc.spool_dir / "acks"
        shutil.rmtree(acks)
        first = [make_event()]
        assert (await client.post(INGEST, content=encode_array(first))).status_code == 202
        await wait_for(lambda: (sc.router.states["a"].last_error or "").startswith("delivery"))
        state = (await client.get("/v1/healthz")).json()
        assert state["status"] == "degraded"
        assert state["backends"]["a"]["last_error"].startswith(
            "delivery loop failed: FileNotFoundError"
        )
        acks.mkdir()
        second = [make_event()]
        assert (await client.post(INGEST, content=encode_array(second))).status_code == 202
        await wait_for(lambda: sc.router.lag("a") == 0)
        assert (await client.get("/v1/healthz")).json()["status"] == "ok"
    # The first event was delivered before its ack failed, so it came again: at least once.
    assert ids(Collect.got["a"]) == ids(first + first + second)


async def test_backends_get_the_events_decoded_at_ingest_not_decoded_again(
    start_sidecar, make_event
):
    from wafermon import decode_batch

    events = [make_event(), make_event()]
    async with start_sidecar(sidecar={"drain_timeout": "100ms"}) as (client, app):
        Collect.down.add("a")
        assert (await client.post(INGEST, content=encode_array(events))).status_code == 202
        router, spool = app.state.sidecar.router, app.state.sidecar.spool
        ((seq, payload),) = spool.read(0)
        assert router._decoded[seq] == decode_batch(payload).events == events  # same content
        Collect.down.clear()
        await wait_for(lambda: router.lag("a") == 0)
    assert ids(Collect.got["a"]) == ids(events)
