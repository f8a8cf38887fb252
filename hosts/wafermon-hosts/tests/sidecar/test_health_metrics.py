"""GET /v1/healthz and GET /metrics: spool figures, every backend's delivery state over time."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.sidecar import Collect, wait_for
from wafermon import encode_array

INGEST = "/v1/ingest/events"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def backend(name: str) -> tuple:
    return (("backend", name),)


async def test_healthz_ok_shows_the_spool_and_every_backend(start_sidecar, make_event):
    backends = [{"name": "a", "type": "collect"}, {"name": "b", "type": "collect"}]
    async with start_sidecar(backends=backends) as (client, app):
        await client.post(INGEST, content=encode_array([make_event(), make_event()]))
        await wait_for(lambda: app.state.sidecar.router.lag("b") == 0)
        await wait_for(lambda: app.state.sidecar.router.lag("a") == 0)
        r = await client.get("/v1/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    spool = body["spool"]
    assert spool["dir"] == str(app.state.sidecar.spool_dir)
    assert spool["bytes"] > 0
    assert spool["max_bytes"] == 2**30
    assert (spool["last_seq"], spool["segments"], spool["ok"]) == (1, 1, True)
    assert body["backends"]["a"] == {
        "type": "collect",
        "breaker": "closed",
        "consecutive_failures": 0,
        "acked_seq": 1,
        "lag": 0,
        "delivered_events": 2,
        "retries": 0,
        "dead_lettered_events": 0,
        "fallback_events": 0,
        "last_error": None,
    }


async def test_a_backend_outage_is_degraded_and_lag_rises_then_falls(start_sidecar, make_event):
    backends = [{"name": "up", "type": "collect"}, {"name": "flaky", "type": "collect"}]
    async with start_sidecar(backends=backends) as (client, app):
        Collect.down.add("flaky")
        for _ in range(5):
            r = await client.post(INGEST, content=encode_array([make_event()]))
            assert r.status_code == 202  # the sidecar still accepts: that is its job
        router = app.state.sidecar.router
        await wait_for(lambda: router.states["flaky"].breaker == "open" and router.lag("up") == 0)
        health = await client.get("/v1/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        flaky = health.json()["backends"]["flaky"]
        assert (flaky["breaker"], flaky["lag"], flaky["acked_seq"]) == ("open", 5, 0)
        assert flaky["last_error"] == "retryable: flaky is down"
        assert health.json()["backends"]["up"]["lag"] == 0

        m = samples((await client.get("/metrics")).text)
        assert m[("wafermon_sidecar_backend_lag_records", backend("flaky"))] == 5
        assert m[("wafermon_sidecar_backend_lag_records", backend("up"))] == 0
        assert m[("wafermon_sidecar_backend_breaker_state", backend("flaky"))] == 2
        assert m[("wafermon_sidecar_backend_retries_total", backend("flaky"))] >= 3

        Collect.down.discard("flaky")
        await wait_for(lambda: router.lag("flaky") == 0)
        m = samples((await client.get("/metrics")).text)
        assert m[("wafermon_sidecar_backend_lag_records", backend("flaky"))] == 0
        assert m[("wafermon_sidecar_backend_breaker_state", backend("flaky"))] == 0
        assert m[("wafermon_sidecar_backend_delivered_events_total", backend("flaky"))] == 5
        assert m[("wafermon_sidecar_backend_acked_seq", backend("flaky"))] == 5
        assert (await client.get("/v1/healthz")).json()["status"] == "ok"
    assert len(Collect.got["flaky"]) == len(Collect.got["up"]) == 5


async def test_metrics_count_requests_events_spool_and_rejects(start_sidecar, make_event):
    backends = [
        {"name": "picky", "type": "collect", "fallback": "spare"},
        {"name": "spare", "type": "filesystem", "config": {"root": "spare"}},
        {"name": "strict", "type": "collect"},
    ]
    Collect.refuse.add("bad-lot")
    async with start_sidecar(backends=backends, sidecar={"backends": ["picky", "strict"]}) as (
        client,
        app,
    ):
        good, bad = make_event(), make_event(entity_id="bad-lot")
        body = encode_array([good, bad])[:-1] + b',{"kind": 1}]'
        assert (await client.post(INGEST, content=body)).status_code == 202
        await client.post(INGEST, content=b"nonsense")
        await client.get("/no/such/path")
        router = app.state.sidecar.router
        await wait_for(lambda: router.lag("picky") == router.lag("strict") == 0)
        m = samples((await client.get("/metrics")).text)
    assert m[("wafermon_sidecar_events_total", (("outcome", "accepted"),))] == 2
    assert m[("wafermon_sidecar_events_total", (("outcome", "rejected"),))] == 2
    assert m[("wafermon_sidecar_spool_appends_total", ())] == 1
    assert m[("wafermon_sidecar_spool_fsyncs_total", ())] >= 1
    assert m[("wafermon_sidecar_spool_last_seq", ())] == 1
    assert m[("wafermon_sidecar_spool_segments", ())] == 1
    assert m[("wafermon_sidecar_spool_bytes", ())] > 0
    assert m[("wafermon_sidecar_spool_max_bytes", ())] == 2**30
    assert m[("wafermon_sidecar_backend_fallback_events_total", backend("picky"))] == 1
    assert m[("wafermon_sidecar_backend_dead_lettered_events_total", backend("strict"))] == 1
    assert m[("wafermon_sidecar_backend_delivered_events_total", backend("picky"))] == 1
    assert ("wafermon_sidecar_backend_lag_records", backend("spare")) not in m  # not routed
    stat = "wafermon_sidecar_backend_stat"  # what each backend's Component.stats() reports
    assert m[(stat, (("backend", "picky"), ("stat", "events_taken")))] == 1
    assert m[(stat, (("backend", "strict"), ("stat", "events_taken")))] == 1
    req = "wafermon_http_requests_total"
    assert m[(req, (("method", "POST"), ("route", "/v1/ingest/events"), ("status", "202")))] == 1
    assert m[(req, (("method", "POST"), ("route", "/v1/ingest/events"), ("status", "400")))] == 1
    assert m[(req, (("method", "GET"), ("route", "<unmatched>"), ("status", "404")))] == 1
    assert (
        m[("wafermon_http_request_duration_seconds_count", (("route", "/v1/ingest/events"),))] == 2
    )


async def test_each_app_has_its_own_registry(start_sidecar, make_event, tmp_path):
    async with (
        start_sidecar() as (one, _),
        start_sidecar(sidecar={"spool": {"dir": str(tmp_path / "two")}}) as (two, _),
    ):
        await one.post(INGEST, content=encode_array([make_event()]))
        accepted = ("wafermon_sidecar_events_total", (("outcome", "accepted"),))
        assert samples((await one.get("/metrics")).text)[accepted] == 1
        assert samples((await two.get("/metrics")).text)[accepted] == 0
