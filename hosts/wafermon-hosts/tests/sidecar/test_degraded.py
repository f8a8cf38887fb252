"""Health is degraded from a backend's first failed attempt, while its circuit is still closed,
and the failure is named on /v1/healthz (the router logs it once, with its traceback)."""

from __future__ import annotations

from tests.helpers.sidecar import FAST_RETRY, Collect, wait_for
from wafermon import encode_array

INGEST = "/v1/ingest/events"


async def test_degraded_from_the_first_failure_not_only_once_the_circuit_opens(
    start_sidecar, make_event
):
    retry = {**FAST_RETRY, "failure_threshold": 1000}  # the circuit will not open here
    backends = [{"name": "flaky", "type": "collect"}]
    async with start_sidecar(backends=backends, sidecar={"retry": retry}) as (client, app):
        Collect.down.add("flaky")
        r = await client.post(INGEST, content=encode_array([make_event()]))
        assert r.status_code == 202
        state = app.state.sidecar.router.states["flaky"]
        await wait_for(lambda: state.consecutive_failures >= 1)
        health = (await client.get("/v1/healthz")).json()
        assert health["status"] == "degraded"
        flaky = health["backends"]["flaky"]
        assert flaky["breaker"] == "closed"
        assert flaky["consecutive_failures"] >= 1
        assert flaky["last_error"] == "retryable: flaky is down"

        Collect.down.discard("flaky")
        await wait_for(lambda: app.state.sidecar.router.lag("flaky") == 0)
        health = (await client.get("/v1/healthz")).json()
        assert health["status"] == "ok"
        assert health["backends"]["flaky"]["consecutive_failures"] == 0
