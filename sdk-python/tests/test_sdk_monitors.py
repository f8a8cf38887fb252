"""upsert_monitor against a real ``wafermon gateway`` process with alerting on: the monitor is
stored with source sdk, listed by GET /v1/monitors, replaced by a second call, and a refused
one raises MonitorError naming the field; a wrong token is refused."""

from __future__ import annotations

import httpx
import pytest

from wafermon.testing import Proc, write_yaml
from wafermon_sdk import MonitorError, upsert_monitor

ADMIN, READ = "sdk-test-admin-token-0123", "sdk-test-read-token-4567"


@pytest.fixture
def gateway(tmp_path):
    config = write_yaml(
        tmp_path / "site.yaml",
        {
            "site_id": "fab1",
            "backends": [
                {"name": "managed", "type": "sql",
                 "config": {"url": f"sqlite+aiosqlite:///{tmp_path}/w.db"}}
            ],
            "gateway": {
                "tokens": {"ingest": "sdk-test-ingest-token-89ab", "read": READ, "admin": ADMIN},
                "alerting": {"enabled": True},
            },
        },
    )  # fmt: skip
    proc = Proc("gateway", config, log_dir=tmp_path).start()
    yield proc
    proc.kill9()


def test_upsert_monitor_from_the_sdk(gateway):
    created = upsert_monitor(
        gateway.url, "nightly-etl", app="etl", cron="0 2 * * *", timezone="Europe/Berlin",
        grace="15m", max_runtime="2h", token=ADMIN,
    )  # fmt: skip
    assert created["source"] == "sdk"
    assert created["schedule"] == {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}
    again = upsert_monitor(gateway.url, "nightly-etl", app="etl", every="1h", token=ADMIN)
    assert again["schedule"] == {"every": "1h"}
    listed = httpx.get(
        gateway.url + "/v1/monitors", headers={"Authorization": f"Bearer {READ}"}
    ).json()["monitors"]
    assert [(m["name"], m["source"], m["schedule"]) for m in listed] == [
        ("nightly-etl", "sdk", {"every": "1h"})
    ]
    with pytest.raises(MonitorError) as refused:
        upsert_monitor(gateway.url, "bad", app="etl", cron="0 25 * * *", token=ADMIN)
    assert any("cron" in p["path"] for p in refused.value.problems)
    with pytest.raises(MonitorError, match="admin"):
        upsert_monitor(gateway.url, "x", app="etl", every="1h", token=READ)
