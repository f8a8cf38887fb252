"""GET /v1/healthz and GET /metrics; startup and retention behaviour they report on."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.gateway import FlakySqlStore, running
from wafermon import QueryAdapter, QueryResult, RetryableError, encode_array, hookimpl
from wafermon_hosts.gateway import runtime
from wafermon_hosts.gateway.runtime import StoreStartError


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


async def test_healthz_ok(client):
    r = await client.get("/v1/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["store"] == {"name": "managed", "type": "sql", "ok": True, "detail": ""}
    assert body["sources"] == {}


async def test_healthz_degraded_when_a_source_fails(start_gateway):
    sources = [{"name": "archive", "type": "failing"}, {"name": "old", "type": "broken-start"}]
    async with start_gateway(sources=sources) as (client, _app):
        r = await client.get("/v1/healthz")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "degraded"
        assert body["sources"]["archive"] == {"ok": False, "detail": "connection refused"}
        assert body["sources"]["old"]["ok"] is False
        assert "failed to start" in body["sources"]["old"]["detail"]


async def test_healthz_down_is_503_when_the_store_is_down(start_gateway, flaky_backends):
    # health_ttl 0: every call checks again (the default reuses a check for 5 s)
    gateway = {"health_ttl": 0}
    async with start_gateway(backends=flaky_backends, gateway=gateway) as (client, _app):
        FlakySqlStore.down = True
        r = await client.get("/v1/healthz")
        assert r.status_code == 503
        assert r.json()["status"] == "down"
        assert r.json()["store"]["detail"] == "database connection lost"
        metrics = samples((await client.get("/metrics")).text)
        assert metrics[("wafermon_gateway_store_up", ())] == 0
        FlakySqlStore.down = False
        assert (await client.get("/v1/healthz")).status_code == 200
        metrics = samples((await client.get("/metrics")).text)
        assert metrics[("wafermon_gateway_store_up", ())] == 1


class ComesBackAdapter(QueryAdapter):
    """Fails its first start, then works: a source that was down when the gateway booted."""

    starts = 0

    async def start(self) -> None:
        type(self).starts += 1
        if type(self).starts == 1:
            raise RetryableError("not yet")

    async def query(self, query):
        return QueryResult([])


async def test_a_source_that_failed_to_start_is_retried_on_use(start_gateway, plugins, monkeypatch):
    class Provider:
        @hookimpl
        def register_query_adapters(self, register):
            register("comes-back", ComesBackAdapter)

    plugins.register(Provider(), "comes-back")
    monkeypatch.setattr(runtime, "SOURCE_RETRY_S", 0.0)
    sources = [{"name": "late", "type": "comes-back"}]
    async with start_gateway(sources=sources, gateway={"health_ttl": 0}) as (client, _):
        assert (await client.get("/v1/healthz")).json()["sources"]["late"]["ok"] is False
        data = (await client.get("/v1/data/unified")).json()
        assert data["sources"]["late"] == {"status": "ok", "count": 0}
        assert (await client.get("/v1/healthz")).json()["status"] == "ok"


async def test_a_store_that_cannot_start_stops_startup_with_its_name(build_app):
    closed_port = "postgresql+asyncpg://nonexistent@127.0.0.1:1/wafermon"
    backends = [{"name": "db", "type": "sql", "config": {"url": closed_port}}]
    app = build_app(backends=backends, gateway={"store": "db"})
    with pytest.raises(StoreStartError, match=r"managed store 'db' \(type sql\) failed to start"):
        async with running(app):
            pass


async def test_metrics_count_requests_events_and_sources(start_gateway, make_event):
    sources = [{"name": "broken", "type": "failing"}]
    async with start_gateway(sources=sources) as (client, _app):
        good = [make_event(), make_event()]
        body = encode_array([*good, good[0]])[:-1] + b',{"kind": 1}]'
        await client.post("/v1/ingest/managed", content=body)
        await client.get("/v1/jobs/nope")
        await client.get("/v1/data/unified")
        await client.get("/no/such/path")
        text = (await client.get("/metrics")).text
    m = samples(text)
    assert m[("wafermon_gateway_events_total", (("outcome", "accepted"),))] == 2
    assert m[("wafermon_gateway_events_total", (("outcome", "duplicate"),))] == 1
    assert m[("wafermon_gateway_events_total", (("outcome", "rejected"),))] == 1
    req = "wafermon_http_requests_total"
    assert m[(req, (("method", "POST"), ("route", "/v1/ingest/managed"), ("status", "200")))] == 1
    assert m[(req, (("method", "GET"), ("route", "/v1/jobs/{id}"), ("status", "404")))] == 1
    assert m[(req, (("method", "GET"), ("route", "<unmatched>"), ("status", "404")))] == 1
    hist = "wafermon_http_request_duration_seconds_count"
    assert m[(hist, (("route", "/v1/data/unified"),))] == 1
    unified = "wafermon_gateway_unified_source_queries_total"
    assert m[(unified, (("source", "managed"), ("status", "ok")))] == 1
    assert m[(unified, (("source", "broken"), ("status", "failed")))] == 1
    assert m[("wafermon_gateway_sse_subscribers", ())] == 0
    assert m[("wafermon_gateway_store_up", ())] == 1
    assert m[("wafermon_gateway_store_stat", (("stat", "pool_checked_out"),))] >= 0
    assert m[("wafermon_gateway_store_stat", (("stat", "pool_size"),))] >= 1


async def test_each_app_has_its_own_registry(start_gateway, make_event):
    async with start_gateway() as (one, _), start_gateway() as (two, _):
        await one.post("/v1/ingest/managed", content=encode_array([make_event()]))
        accepted = ("wafermon_gateway_events_total", (("outcome", "accepted"),))
        assert samples((await one.get("/metrics")).text)[accepted] == 1
        assert samples((await two.get("/metrics")).text)[accepted] == 0


async def test_retention_runs_are_counted_and_failures_survived(start_gateway, flaky_backends):
    async with start_gateway(backends=flaky_backends) as (_client, app):
        gw = app.state.gateway
        assert await gw.run_retention() == 0

        async def broken():
            raise RetryableError("database connection lost")

        gw.store.enforce_retention = broken
        assert await gw.run_retention() is None
        assert gw.metrics.retention_failures._value.get() == 1
