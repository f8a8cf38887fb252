"""The alert engine end to end: real events POSTed to a gateway on a real socket, the engine's
clock moved by the test (stream time is the events' own), notifications received by a real
local HTTP receiver through the real webhook notifier.

Each test drives evaluation cycles itself (``step``) so a cycle happens at a known clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.helpers.alerting import (
    alerting_config,
    alerting_gateway,
    event,
    get,
    post,
    run,
    running_receiver,
    step,
)
from tests.helpers.sidecar import metric
from wafermon import hookimpl
from wafermon_hosts.gateway.alerting import AlertRule

T = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture
async def receiver():
    async with running_receiver() as r:
        yield r


@pytest.fixture
def setup(tmp_path, sqlite_url, plugins, receiver):
    def make(**alerting):
        return alerting_gateway(
            plugins, alerting_config(tmp_path, sqlite_url, receiver.url, **alerting), T
        )

    return make


HOURLY = {
    "name": "hourly-etl",
    "app": "etl",
    "schedule": {"every": "1h"},
    "grace": "10m",
    "max_runtime": "30m",
}


async def test_missed_start_fires_once_and_resolves_when_the_job_runs(setup, receiver):
    async with setup(monitors=[HOURLY]) as gw:
        await post(gw, run(T, job="etl-1"))
        await step(gw, to=T + 5 * MIN)
        # Another app keeps the site's stream time moving past due (1h) + grace (10m).
        await post(gw, [event("started", T + 75 * MIN, job="other-1", app="other")])
        await step(gw, to=T + 75 * MIN)
        await step(gw, to=T + 76 * MIN)  # a second cycle must not notify again
        missed = receiver.of("monitor_missed", "firing")
        assert len(missed) == 1
        assert missed[0]["labels"]["monitor"] == "hourly-etl"
        (monitor,) = (await get(gw.url, "/v1/monitors"))["monitors"]
        assert monitor["state"] == "late"
        assert monitor["source"] == "config"
        assert monitor["last_run"]["job_id"] == "etl-1"

        await post(gw, run(T + 77 * MIN, job="etl-2"))
        await step(gw, to=T + 83 * MIN)
        assert len(receiver.of("monitor_missed", "resolved")) == 1
        (alert,) = (await get(gw.url, "/v1/alerts", status="all", rule="monitor_missed"))["alerts"]
        assert alert["status"] == "resolved"
        detail = await get(gw.url, f"/v1/alerts/{alert['fingerprint']}")
        assert [t["status"] for t in detail["transitions"]] == ["firing", "resolved"]
        assert all(n["ok"] for n in detail["notifications"])
        assert len(detail["notifications"]) == 2


async def test_overdue_finish(setup, receiver):
    async with setup(monitors=[HOURLY]) as gw:
        await post(gw, [event("started", T, job="etl-1")])
        await post(gw, [event("progress", T + 20 * MIN, job="etl-1")])
        await step(gw, to=T + 20 * MIN)
        assert receiver.of("monitor_overdue") == []
        await post(gw, [event("progress", T + 31 * MIN, job="etl-1")])
        await step(gw, to=T + 31 * MIN)
        (overdue,) = receiver.of("monitor_overdue", "firing")
        assert overdue["labels"]["monitor"] == "hourly-etl"
        assert (await get(gw.url, "/v1/monitors"))["monitors"][0]["state"] == "overdue"
        await post(gw, [event("finished", T + 40 * MIN, job="etl-1", duration_s=2400)])
        await step(gw, to=T + 40 * MIN)
        assert len(receiver.of("monitor_overdue", "resolved")) == 1


async def test_n_failures_fire_and_m_successes_resolve(setup, receiver):
    monitor = {**HOURLY, "failures_to_alert": 2, "successes_to_resolve": 2, "max_runtime": None}
    async with setup(monitors=[monitor]) as gw:
        when = T
        for i, ok in enumerate([False]):
            await post(gw, run(when, job=f"r{i}", ok=ok))
        await step(gw, to=T + 10 * MIN)
        assert receiver.of("monitor_failing") == []  # one failure is not two
        await post(gw, run(T + 60 * MIN, job="r1", ok=False))
        await step(gw, to=T + 70 * MIN)
        assert len(receiver.of("monitor_failing", "firing")) == 1
        await post(gw, run(T + 120 * MIN, job="r2", ok=True))
        await step(gw, to=T + 130 * MIN)
        assert receiver.of("monitor_failing", "resolved") == []  # one success is not two
        await post(gw, run(T + 180 * MIN, job="r3", ok=True))
        await step(gw, to=T + 190 * MIN)
        assert len(receiver.of("monitor_failing", "resolved")) == 1
        assert len(receiver.of("monitor_failing", "firing")) == 1


async def test_cron_monitor_in_a_time_zone(setup, receiver):
    # 09:00 Berlin is 08:00 UTC in winter: the job is due at T.
    nightly = {
        "name": "berlin-9",
        "app": "etl",
        "schedule": {"cron": "0 9 * * *", "timezone": "Europe/Berlin"},
        "grace": "15m",
    }
    async with setup(monitors=[nightly]) as gw:
        gw.alerting.origin = T - timedelta(days=1)
        await post(gw, [event("started", T + 10 * MIN, job="x", app="other")])
        await step(gw, to=T + 10 * MIN)
        assert receiver.of("monitor_missed") == []  # within grace
        await post(gw, [event("started", T + 16 * MIN, job="y", app="other")])
        await step(gw, to=T + 16 * MIN)
        (missed,) = receiver.of("monitor_missed", "firing")
        assert "2026-11-30T09:00:00+01:00" in missed["summary"]


async def test_failure_rate_rule(setup, receiver):
    rule = {
        "name": "etl-failing-often",
        "type": "failure_rate",
        "app": "etl",
        "failures": 3,
        "of_last": 5,
        "severity": "critical",
        "message": "{app}: {failed} of {total} failed",
    }
    async with setup(rules=[rule]) as gw:
        events = []
        for i, ok in enumerate([True, False, True, False, True]):
            events += run(T + i * 10 * MIN, job=f"j{i}", ok=ok)
        await post(gw, events)
        await step(gw, to=T + 50 * MIN)
        assert receiver.of("etl-failing-often") == []
        await post(gw, run(T + 50 * MIN, job="j5", ok=False))
        await step(gw, to=T + 60 * MIN)
        (fired,) = receiver.of("etl-failing-often", "firing")
        assert fired["severity"] == "critical"
        assert fired["description"] == "etl: 3 of 5 failed"


async def test_site_stall_is_one_alert_not_hundreds(setup, receiver):
    monitors = [
        {"name": f"m{i}", "app": f"app{i}", "schedule": {"every": "10m"}, "grace": "1m"}
        for i in range(150)
    ]
    long_running = {"name": "long", "type": "long_running", "max_runtime": "5m"}
    async with setup(monitors=monitors, rules=[long_running], stall_after="15m") as gw:
        events = [e for i in range(150) for e in run(T, job=f"j{i}", app=f"app{i}", minutes=1)]
        events.append(event("started", T, job="stuck", app="stuck"))
        await post(gw, events)
        await step(gw, to=T + 2 * MIN)
        assert receiver.alerts == []
        # The site stops reporting. Wall clock moves on by an hour; nothing arrives.
        await step(gw, to=T + 60 * MIN)
        assert [a["rule"] for a in receiver.alerts] == ["site_not_reporting"]
        monitors_now = (await get(gw.url, "/v1/monitors"))["monitors"]
        assert {m["state"] for m in monitors_now} == {"unknown"}
        # Events come back (the backlog, then new ones): the site alert resolves, and the
        # monitors are judged on what really ran.
        backlog = [
            e
            for i in range(150)
            for k in range(1, 7)
            for e in run(T + k * 10 * MIN, job=f"j{i}-{k}", app=f"app{i}", minutes=1)
        ]
        await post(gw, [*backlog, event("finished", T + 61 * MIN, job="stuck", app="stuck")])
        await step(gw, to=T + 62 * MIN)
        assert len(receiver.of("site_not_reporting", "resolved")) == 1
        assert receiver.of("monitor_missed") == []


async def test_site_stall_inhibits_the_sites_other_alerts(setup, receiver):
    long_running = {"name": "long", "type": "long_running", "max_runtime": "5m"}
    async with setup(rules=[long_running], stall_after="15m") as gw:
        await post(gw, [event("started", T, job="stuck", app="stuck")])
        await step(gw, to=T + 30 * MIN)  # stalled: stream time stays at T
        assert [a["rule"] for a in receiver.alerts] == ["site_not_reporting"]
        await post(gw, [event("progress", T + 31 * MIN, job="stuck", app="stuck")])
        await step(gw, to=T + 31 * MIN)
        assert len(receiver.of("long", "firing")) == 1  # reporting again, really running long


async def test_silence_suppresses_then_expiry_lets_it_through(setup, receiver):
    rule = {"name": "any-failure", "type": "failure_rate", "failures": 1, "of_last": 1}
    async with setup(rules=[rule]) as gw, httpx.AsyncClient(base_url=gw.url, timeout=10) as http:
        bad = await http.post("/v1/silences", json={"matchers": {"app": "etl"}})
        assert bad.status_code == 400
        paths = {p["path"] for p in bad.json()["problems"]}
        assert {"$.author", "$.reason", "$.ends_at"} <= paths
        created = await http.post(
            "/v1/silences",
            json={
                "matchers": {"rule": "any-failure", "app": "etl"},
                "author": "ana",
                "reason": "maintenance of the etl cluster",
                "duration": "2h",
            },
        )
        assert created.status_code == 201, created.text
        silence = created.json()
        assert silence["active"]
        assert silence["author"] == "ana"
        await post(gw, run(T, job="f1", ok=False))
        await step(gw, to=T + 10 * MIN)
        assert receiver.alerts == []
        (alert,) = (await get(gw.url, "/v1/alerts"))["alerts"]
        assert alert["silenced_by"] == silence["id"]
        assert alert["status"] == "firing"
        assert (await http.delete(f"/v1/silences/{silence['id']}")).status_code == 204
        listed = (await get(gw.url, "/v1/silences"))["silences"]
        assert [s["active"] for s in listed] == [False]
        await step(gw, to=T + 11 * MIN)
        assert len(receiver.of("any-failure", "firing")) == 1


async def test_notifier_down_then_back(setup, receiver):
    rule = {"name": "any-failure", "type": "failure_rate", "failures": 1, "of_last": 1}
    async with setup(rules=[rule]) as gw:
        receiver.fail_next = 2  # two 503s, then it answers
        await post(gw, run(T, job="f1", ok=False))
        await step(gw, to=T + 10 * MIN)
        assert len(receiver.of("any-failure", "firing")) == 1
        (alert,) = (await get(gw.url, "/v1/alerts"))["alerts"]
        assert [n["ok"] for n in alert["notifications"]] == [False, False, True]
        assert "503" in alert["notifications"][0]["error"]

        receiver.down = True  # down for good: 3 attempts, then given up, visible
        await post(gw, run(T + 20 * MIN, job="ok1"))
        await step(gw, to=T + 30 * MIN)
        (resolved,) = (await get(gw.url, "/v1/alerts", status="resolved"))["alerts"]
        assert [n["ok"] for n in resolved["notifications"]][-3:] == [False] * 3
        async with httpx.AsyncClient() as http:
            text = (await http.get(gw.url + "/metrics")).text
        failed = "wafermon_gateway_alert_notifications_total"
        assert metric(text, failed, notifier="hook", outcome="failed") == 1
        assert metric(text, failed, notifier="hook", outcome="ok") == 1


async def test_monitors_api_upsert_list_delete(setup, receiver):
    async with (
        setup(monitors=[HOURLY]) as gw,
        httpx.AsyncClient(base_url=gw.url, timeout=10) as http,
    ):
        body = {"app": "loader", "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}}
        created = await http.put("/v1/monitors/nightly-loader", json=body)
        assert created.status_code == 201, created.text
        again = await http.put("/v1/monitors/nightly-loader", params={"source": "sdk"}, json=body)
        assert again.status_code == 200
        assert again.json()["source"] == "sdk"
        bad = await http.put(
            "/v1/monitors/x", json={"app": "a", "schedule": {"cron": "0 25 * * *"}}
        )
        assert bad.status_code == 400
        assert "cron" in bad.text
        clash = await http.put("/v1/monitors/hourly-etl", json=body)
        assert clash.status_code == 409
        await step(gw, to=T)
        names = {m["name"]: m for m in (await get(gw.url, "/v1/monitors"))["monitors"]}
        assert names["nightly-loader"]["schedule"] == body["schedule"]
        assert names["nightly-loader"]["source"] == "sdk"
        assert (await http.delete("/v1/monitors/nightly-loader")).status_code == 204
        assert (await http.delete("/v1/monitors/nightly-loader")).status_code == 404


def test_config_errors_name_the_key(tmp_path, plugins):
    import wafermon_backend_webhook.plugin

    from wafermon import ConfigError
    from wafermon.config import load_config
    from wafermon_hosts.gateway.settings import build_gateway

    plugins.register(wafermon_backend_webhook.plugin, "webhook")

    def problems(**alerting) -> list[str]:
        path = alerting_config(
            tmp_path, "sqlite+aiosqlite:///x.db", "http://127.0.0.1:9", **alerting
        )
        with pytest.raises(ConfigError) as caught:
            build_gateway(load_config(path), plugins)
        return [str(p) for p in caught.value.problems]

    found = problems(
        monitors=[
            {"name": "a", "app": "x", "schedule": {"cron": "0 25 * * *"}},
            {"name": "b", "app": "x", "schedule": {"every": "1h", "timezone": "Mars/Base"}},
            {"name": "c", "app": "x", "schedule": {"every": "1h"}, "graec": "5m"},
        ]
    )
    assert any(p.startswith("gateway.alerting.monitors[0].schedule.cron") for p in found)
    assert any(p.startswith("gateway.alerting.monitors[1].schedule.timezone") for p in found)
    assert any("monitors[2].graec" in p and "grace" in p for p in found)
    found = problems(notifiers=["hook", "pager"], rules=[{"name": "r", "type": "failure_rat"}])
    assert any(p.startswith("gateway.alerting.notifiers[1]") and "pager" in p for p in found)
    assert any(
        p.startswith("gateway.alerting.rules[0].type") and "failure_rate" in p for p in found
    )


class SlowFridays:
    """A plugin with a custom rule through the register_alert_rules hook."""

    @hookimpl(optionalhook=True)
    def register_alert_rules(self, register):
        def too_many_running(ctx):
            running = [j for j in ctx.runs() if j.status == "running"]
            limit = ctx.spec.config.get("max", 2)
            return {"site_id": "fab1"} if len(running) > limit else False

        register(
            AlertRule(
                name="too-many-running",
                condition=too_many_running,
                severity="critical",
                message_template="{rule}: more than the allowed jobs are running at {site_id}",
                cooldown_minutes=30,
            )
        )


async def test_custom_rule_from_a_plugin(tmp_path, sqlite_url, plugins, receiver):
    plugins.register(SlowFridays(), "slow-fridays")
    rule = {"name": "crowded", "type": "too-many-running", "config": {"max": 2}}
    config = alerting_config(tmp_path, sqlite_url, receiver.url, rules=[rule])
    async with alerting_gateway(plugins, config, T) as gw:
        await post(gw, [event("started", T + i * MIN, job=f"r{i}") for i in range(3)])
        await step(gw, to=T + 3 * MIN)
        (fired,) = receiver.of("crowded", "firing")
        assert fired["severity"] == "critical"
        assert fired["description"] == "crowded: more than the allowed jobs are running at fab1"


async def test_store_down_is_one_alert_sent_directly_then_resolved(setup, receiver):
    async with setup() as gw:
        engine = gw.alerting
        working = engine.state.merge_watermarks

        async def down(_seen):
            raise ConnectionRefusedError("database 127.0.0.1:5432 refused the connection")

        engine.state.merge_watermarks = down  # the store's database goes away
        for _ in range(5):
            assert await engine.run_cycle() is False
        await engine.settle()
        (alert,) = receiver.of("store_unreachable")
        assert alert["status"] == "firing"
        assert "refused" in alert["summary"]
        engine.state.merge_watermarks = working
        assert await engine.run_cycle() is True
        await engine.settle()
        assert [a["status"] for a in receiver.of("store_unreachable")] == ["firing", "resolved"]


async def test_grouping_wait_interval_and_a_flap_never_sent(setup, receiver):
    rule = {"name": "any-failure", "type": "failure_rate", "failures": 1, "of_last": 1}
    async with setup(rules=[rule], group_wait="5m", group_interval="2m") as gw:
        # A flap: fails and recovers within group_wait -> nothing is ever sent for it.
        await post(gw, run(T, job="f0", ok=False, app="flappy"))
        await step(gw, to=T + 6 * MIN)
        await post(gw, run(T + 7 * MIN, job="f1", ok=True, app="flappy"))
        await step(gw, to=T + 12 * MIN)
        await step(gw, to=T + 20 * MIN)
        assert receiver.alerts == []
        # A real failure waits group_wait, then goes out.
        await post(gw, run(T + 20 * MIN, job="e0", ok=False, app="etl"))
        await step(gw, to=T + 25 * MIN)
        assert receiver.alerts == []
        await step(gw, to=T + 31 * MIN)
        assert [a["labels"]["app"] for a in receiver.alerts] == ["etl"]
        # Another alert of the same group (rule, site_id) waits for group_interval (2m).
        await post(gw, run(T + 27 * MIN, job="l0", ok=False, app="load"))  # fails at +32
        await step(gw, to=T + 32 * MIN)
        assert [a["labels"]["app"] for a in receiver.alerts] == ["etl"]
        await step(gw, to=T + 34 * MIN)
        assert [a["labels"]["app"] for a in receiver.alerts] == ["etl", "load"]


async def test_a_receivers_retry_after_is_honoured(setup, receiver):
    rule = {"name": "any-failure", "type": "failure_rate", "failures": 1, "of_last": 1}
    retry = {"attempts": 3, "initial": "50ms", "max": "5s"}
    async with setup(rules=[rule], retry=retry) as gw:
        receiver.fail_next, receiver.retry_after = 1, "1"
        await post(gw, run(T, job="f1", ok=False))
        await step(gw, to=T + 10 * MIN)
        assert len(receiver.of("any-failure", "firing")) == 1
        first, second = receiver.attempt_times
        assert second - first >= 1.0  # not the 50 ms backoff: what the receiver asked for
