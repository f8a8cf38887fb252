"""Alerting across real processes: a ``wafermon sidecar`` forwarding to two ``wafermon
gateway`` processes that share one PostgreSQL store, notifications POSTed by the real webhook
notifier to a real local receiver.

Two gateways on one store must notify once per transition: only the lease holder evaluates,
a transition is a row keyed by (fingerprint, seq) and a notification is claimed by
compare-and-set. When the leader is killed -9 the other takes the lease over once it expires
and sends the resolutions, again once each.

Needs WAFERMON_TEST_PG_URL (scripts/test starts PostgreSQL); fails without it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.helpers.alerting import running_receiver
from tests.helpers.sidecar import metric
from wafermon import App, Entity, ErrorInfo, Event, Metrics, encode_array
from wafermon.testing import Proc, processes, write_yaml

APPS = [f"app{i}" for i in range(8)]


def site_config(path: Path, pg_url: str, receiver_url: str, **extra) -> Path:
    return write_yaml(
        path,
        {
            "site_id": "fab1",
            "backends": [{"name": "managed", "type": "sql", "config": {"url": pg_url}}],
            "notifiers": [
                {"name": "hook", "type": "webhook", "config": {"url": receiver_url + "/hook"}}
            ],
            "gateway": {
                "alerting": {
                    "enabled": True,
                    "interval": "300ms",
                    "lease": "2s",
                    "group_interval": "0s",
                    "notifiers": ["hook"],
                    "rules": [
                        {"name": "app-failed", "type": "failure_rate", "failures": 1, "of_last": 1}
                    ],
                    "retry": {"attempts": 3, "initial": "50ms", "max": "200ms"},
                }
            },
            **extra,
        },
    )


def run(app: str, ok: bool) -> list[Event]:
    now = datetime.now(UTC)
    job = f"{app}-{uuid.uuid4().hex[:6]}"

    def one(kind: str, when: datetime) -> Event:
        return Event(
            event_id=uuid.uuid4(),
            kind=kind,
            time=when,
            site_id="fab1",
            app=App(name=app),
            entity=Entity(type="job", id=job),
            error=ErrorInfo(type="Boom", message="no") if kind == "failed" else None,
            metrics=Metrics(duration_s=1.0 if kind != "started" else None),
        )

    return [one("started", now - timedelta(seconds=1)), one("finished" if ok else "failed", now)]


async def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def leader(http: httpx.AsyncClient, gateways: list[Proc]) -> Proc:
    for _ in range(200):
        for gw in gateways:
            text = (await http.get(gw.url + "/metrics")).text
            if metric(text, "wafermon_gateway_alert_leader") == 1:
                return gw
        await asyncio.sleep(0.05)
    raise AssertionError("no gateway holds the lease")


async def test_two_gateways_on_one_store_notify_once_and_fail_over(tmp_path, pg_url):
    async with running_receiver() as receiver, httpx.AsyncClient(timeout=10) as http:
        with processes() as started:
            gateways = []
            for n in range(2):
                config = site_config(tmp_path / f"gw{n}.yaml", pg_url, receiver.url)
                gw = Proc("gateway", config, log_dir=tmp_path).start()
                started.append(gw)
                gateways.append(gw)
            sidecar_yaml = write_yaml(
                tmp_path / "sidecar.yaml",
                {
                    "site_id": "fab1",
                    "sidecar": {"spool": {"dir": str(tmp_path / "spool")}},
                    "backends": [
                        {"name": "gw", "type": "gateway", "config": {"url": gateways[0].url}}
                    ],
                },
            )
            sidecar = Proc("sidecar", sidecar_yaml, log_dir=tmp_path).start()
            started.append(sidecar)

            # Half the failures through the sidecar (to gateway 0), half straight to gateway 1.
            for i, app in enumerate(APPS):
                body = encode_array(run(app, ok=False))
                if i % 2 == 0:
                    r = await http.post(
                        sidecar.url + "/v1/ingest/events",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    assert r.status_code == 202, r.text
                else:
                    r = await http.post(
                        gateways[1].url + "/v1/ingest/managed",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    assert r.status_code == 200, r.text
            await wait_for(lambda: len(receiver.of("app-failed", "firing")) == len(APPS))
            await asyncio.sleep(2.0)  # several more cycles on both gateways
            firing = Counter(a["labels"]["app"] for a in receiver.of("app-failed", "firing"))
            assert firing == dict.fromkeys(APPS, 1)

            # The leader dies; the other takes over when the lease expires, resolves once each.
            dead = await leader(http, gateways)
            dead.kill9()
            alive = next(g for g in gateways if g is not dead)
            for app in APPS:
                r = await http.post(
                    alive.url + "/v1/ingest/managed",
                    content=encode_array(run(app, ok=True)),
                    headers={"Content-Type": "application/json"},
                )
                assert r.status_code == 200, r.text
            await wait_for(lambda: len(receiver.of("app-failed", "resolved")) == len(APPS))
            await asyncio.sleep(1.0)
            resolved = Counter(a["labels"]["app"] for a in receiver.of("app-failed", "resolved"))
            assert resolved == dict.fromkeys(APPS, 1)
            assert len(receiver.alerts) == 2 * len(APPS)
            history = (await http.get(alive.url + "/v1/alerts", params={"status": "all"})).json()
            assert len(history["alerts"]) == len(APPS)
            assert all(a["status"] == "resolved" for a in history["alerts"])
