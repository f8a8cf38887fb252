"""Every operation the gateway documents, called on a live gateway (real socket, real store,
a trend source, a failing source, alerting with a real webhook receiver): each answer, success
or error, matches the schema the gateway's own /openapi.json gives for its status, with no
field the document does not name (``tests.helpers.openapi.Answers``). A documented operation
without a successful checked answer here fails the test, so a new route needs a call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers.alerting import alerting_gateway, event, run, running_receiver, step
from tests.helpers.gateway import FUZZ_TOKENS
from tests.helpers.openapi import Answers
from tests.helpers.trends import TrendPlugin
from wafermon import encode_array
from wafermon_hosts.common.bodies import schemas
from wafermon_hosts.gateway.alerting.bodies import MonitorRequest, SilenceRequest
from wafermon_hosts.gateway.bodies import ExternalQuery

T = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
MONITOR = {"app": "loader", "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}}


async def test_every_documented_answer_matches_its_schema(tmp_path, sqlite_url, plugins):
    plugins.register(TrendPlugin(), "trend-test")
    async with running_receiver() as receiver:
        config = {
            "site_id": "fab1",
            "backends": [{"name": "managed", "type": "sql", "config": {"url": sqlite_url}}],
            "sources": [
                {"name": "metrics", "type": "counting"},
                {"name": "broken", "type": "failing"},
            ],
            "notifiers": [
                {"name": "hook", "type": "webhook", "config": {"url": receiver.url + "/hook"}}
            ],
            "gateway": {
                "tokens": FUZZ_TOKENS,
                "alerting": {
                    "enabled": True,
                    "notifiers": ["hook"],
                    "monitors": [
                        {"name": "hourly-etl", "app": "etl", "schedule": {"every": "1h"},
                         "grace": "10m", "failures_to_alert": 1},
                    ],
                },
            },
        }  # fmt: skip
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        async with (
            alerting_gateway(plugins, path, T) as gw,
            httpx.AsyncClient(base_url=gw.url, timeout=10) as http,
        ):
            answers = await Answers.of(http, FUZZ_TOKENS)
            call = answers.call

            await call("GET", "/openapi.json")
            await call("GET", "/metrics")
            await call("GET", "/-/plugins")
            open_health = await http.get("/v1/healthz")  # no token: the status only
            answers.check("/v1/healthz", open_health)
            assert set(open_health.json()) == {"status"}
            read = {"Authorization": f"Bearer {FUZZ_TOKENS['read']}"}
            health = await call("GET", "/v1/healthz", headers=read)
            assert health.json()["sources"]["broken"]["ok"] is False
            answers.check("/v1/jobs", await http.get("/v1/jobs"))  # 401
            wrong = await http.get("/v1/jobs", headers={"Authorization": "Bearer nope"})
            answers.check("/v1/jobs", wrong)  # 403

            # Ingest: a failed job with a subjob, then the same again (duplicates) and junk.
            events = [
                *run(T, job="j1", ok=False),
                event("started", T, job="j1/w1", entity_type="subjob", parent_id="j1"),
            ]
            gw.clock.set(T + 5 * MIN)
            body = encode_array(events)
            headers = {"Content-Type": "application/json"}
            ingest = "/v1/ingest/managed"
            assert (await call("POST", ingest, content=body, headers=headers)).json()[
                "accepted"
            ] == 3
            await call("POST", ingest, content=body, headers=headers)
            junk = json.dumps([{"kind": "started"}, "not an event"]).encode()
            await call("POST", ingest, content=junk, headers=headers)
            await call("POST", ingest, content=b"{", headers=headers)
            await call("POST", ingest, content=body, headers={"Content-Type": "text/plain"})

            # Jobs, subjobs and events.
            assert [j["entity_id"] for j in (await call("GET", "/v1/jobs")).json()["items"]] == [
                "j1"
            ]
            await call("GET", "/v1/jobs", params={"limit": 0})
            await call("GET", "/v1/subjobs", params={"parent_id": "j1"})
            detail = await call("GET", "/v1/jobs/{id}", "/v1/jobs/j1")
            assert detail.json()["job"]["error"]["type"] == "Boom"
            await call("GET", "/v1/jobs/{id}", "/v1/jobs/nope")
            external = "/v1/query/external"
            await call("POST", external, json={"source": "managed", "query": {"limit": 2}})
            await call("POST", external, json={"source": "broken"})
            await call("POST", external, json={"source": "nope"})
            await call("POST", external, json={"source": "managed", "query": {"limit": "x"}})
            unified = await call("GET", "/v1/data/unified", params={"sources": "managed,broken"})
            assert unified.json()["sources"]["broken"]["status"] == "failed"
            await call("GET", "/v1/trends/sources")
            await call("GET", "/v1/trends", params={"source": "metrics", "metric": "JobsFailed"})
            await call("GET", "/v1/trends", params={"source": "metrics", "metric": "nope"})
            async with http.stream("GET", "/v1/stream", headers=read) as stream:
                answers.check("/v1/stream", stream, body=False)  # it never ends by itself

            # Alerting: monitors, the alert the failure fires, silences.
            monitor = "/v1/monitors/{name}"
            created = await call("PUT", monitor, "/v1/monitors/nightly", json=MONITOR)
            assert created.status_code == 201
            await call("PUT", monitor, "/v1/monitors/nightly", json=MONITOR)
            await call("PUT", monitor, "/v1/monitors/bad", json={"app": "a"})
            await call("GET", "/v1/monitors")
            await step(gw, to=T + 10 * MIN)
            alerts = (await call("GET", "/v1/alerts")).json()["alerts"]
            assert alerts, "the failed run fires monitor_failing"
            fingerprint = alerts[0]["fingerprint"]
            await call("GET", "/v1/alerts/{fingerprint}", f"/v1/alerts/{fingerprint}")
            await call("GET", "/v1/alerts/{fingerprint}", "/v1/alerts/nope")
            silence = {"matchers": {"rule": "*"}, "author": "ops", "reason": "test"}
            made = await call("POST", "/v1/silences", json={**silence, "duration": "1h"})
            await call("POST", "/v1/silences", json={"matchers": {}})
            too_long = await call("POST", "/v1/silences", json={**silence, "duration": 1e300})
            assert too_long.json()["problems"][0]["path"] == "$.duration"
            await call("GET", "/v1/silences")
            silence_id = made.json()["id"]
            await call("DELETE", "/v1/silences/{id}", f"/v1/silences/{silence_id}")
            await call("DELETE", "/v1/silences/{id}", "/v1/silences/nope")
            await call("DELETE", monitor, "/v1/monitors/nightly")
            await call("DELETE", monitor, "/v1/monitors/nightly")
            await request_bodies_are_the_structs(http, call)

    assert answers.uncovered() == [], "call these operations here"
    assert answers.checked >= 40


def documented_fields(doc: dict, path: str, method: str, struct: type) -> set[str]:
    """The fields of an operation's request body, after checking that its schema is the
    component generated from ``struct`` (the type the handler decodes the body into)."""
    body = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[1]
    assert name == struct.__name__
    assert doc["components"]["schemas"][name] == schemas(struct)[name]
    return set(doc["components"]["schemas"][name]["properties"])


async def request_bodies_are_the_structs(http, call) -> None:
    """Each documented request body: a body with every field it names is accepted, and one
    more field is refused, its JSON path named (so no field is read but not documented)."""
    doc = (await http.get("/openapi.json")).json()
    filters = {
        "start": "2026-11-30T07:00:00Z", "end": "2026-11-30T09:00:00", "site_id": "fab1",
        "app": "etl", "entity_type": "job", "entity_id": "j1", "status": "failed",
        "business_key": None, "sub_key": None, "limit": 5, "cursor": None,
    }  # fmt: skip
    external = {"source": "managed", "query": filters}
    assert documented_fields(doc, "/v1/query/external", "post", ExternalQuery) == set(external)
    assert set(doc["components"]["schemas"]["QueryFilters"]["properties"]) == set(filters)
    page = await call("POST", "/v1/query/external", json=external)
    assert page.json()["events"], "the failed run of j1 matches every filter"
    monitor = {
        "name": "ignored", "app": "loader", "schedule": {"cron": "0 3 * * *", "timezone": "UTC"},
        "site_id": "fab1", "business_key": "lot-*", "grace": "5m", "max_runtime": "1h",
        "min_runtime": 30, "failures_to_alert": 2, "successes_to_resolve": 1,
        "severity": "warning", "notifiers": ["hook"], "source": "sdk", "state": "ok",
    }  # fmt: skip
    template = "/v1/monitors/{name}"
    assert documented_fields(doc, template, "put", MonitorRequest) == set(monitor)
    assert set(doc["components"]["schemas"]["ScheduleRequest"]["properties"]) == {
        "every", "cron", "timezone"
    }  # fmt: skip
    made = await call("PUT", template, "/v1/monitors/full", json=monitor)
    assert made.status_code == 201
    assert (made.json()["name"], made.json()["source"]) == ("full", "api")
    every = {**monitor, "schedule": {"every": 3600}}
    assert (await call("PUT", template, "/v1/monitors/full", json=every)).status_code == 200
    silence = {
        "matchers": {"app": "etl"}, "author": "ops", "reason": "test",
        "starts_at": "2026-11-30T08:00:00Z", "ends_at": "2026-11-30T09:00:00Z", "duration": "1h",
    }  # fmt: skip
    assert documented_fields(doc, "/v1/silences", "post", SilenceRequest) == set(silence)
    assert (await call("POST", "/v1/silences", json=silence)).status_code == 201

    cases: list[tuple[str, str, str | None, dict[str, Any], str]] = [
        ("POST", "/v1/query/external", None, external, "$"),
        ("POST", "/v1/query/external", None, {**external, "query": {**filters, "x": 1}}, "$.query"),
        ("PUT", "/v1/monitors/full", template, monitor, "$"),
        ("PUT", "/v1/monitors/full", template, {**monitor, "schedule": {"cron": "0 3 * * *", "x": 1}}, "$.schedule"),
        ("POST", "/v1/silences", None, silence, "$"),
    ]  # fmt: skip
    for method, path, route, body, where in cases:
        extra = {**body, "x": 1} if where == "$" else body
        refused = await call(method, route or path, path, json=extra)
        assert refused.status_code == 400, (path, refused.text)
        problems = [(p["path"], p["message"]) for p in refused.json()["problems"]]
        assert problems == [(f"{where}.x", "unknown field")], (path, problems)


def test_an_answer_the_document_does_not_describe_fails_the_check(build_app):
    """What the test above relies on: a field the schema does not name, a wrong type, a
    missing required field or an undocumented status each fail ``Answers.check``."""
    answers = Answers(build_app().state.openapi)
    request = httpx.Request("GET", "http://gateway/v1/jobs")
    good = {"items": [], "next_cursor": None}
    answers.check("/v1/jobs", httpx.Response(200, json=good, request=request))
    for status, body, says in [
        (200, {**good, "total": 3}, "Additional properties are not allowed"),
        (200, {**good, "next_cursor": 7}, "is not valid under any of the given schemas"),
        (200, {"items": []}, "'next_cursor' is a required property"),
        (418, good, "status not documented"),
        (400, {"error": "bad", "hint": "x"}, "Additional properties are not allowed"),
    ]:
        with pytest.raises(AssertionError, match=says):
            answers.check("/v1/jobs", httpx.Response(status, json=body, request=request))
    assert answers.uncovered() != []  # only /v1/jobs succeeded
