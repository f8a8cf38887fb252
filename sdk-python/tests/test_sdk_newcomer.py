"""Subjobs inherit the lot's business key; console mode prints each event as it is sent.

Direct mode to the real filesystem backend, as test_sdk_monitored.py does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sdk_helpers import filesystem_events, write_yaml

from wafermon_sdk import AppRef, Client, Monitored

APP = AppRef(name="wafer-process")


def make_client(tmp_path: Path, **settings) -> Client:
    site = write_yaml(
        tmp_path / "site.yaml",
        {
            "site_id": "fab1",
            "backends": [
                {"name": "fs", "type": "filesystem", "config": {"root": str(tmp_path / "ev")}}
            ],
        },
    )
    return Client(mode="direct", site_config=str(site), flush_interval="20ms", **settings)


def test_subjobs_inherit_the_parents_business_key_unless_given_one(tmp_path):
    client = make_client(tmp_path)
    try:
        with Monitored(app=APP, business_key="LOT-7", client=client) as lot:
            with Monitored(app=APP, entity_type="subjob", sub_key="w1", client=client) as w1:
                pass
            with Monitored(
                app=APP, entity_type="subjob", parent_id=lot.entity_id, client=client
            ) as w2:
                pass
            with Monitored(app=APP, entity_type="subjob", business_key="OWN", client=client) as w3:
                pass
        with (
            Monitored(app=APP, client=client) as keyless,
            Monitored(app=APP, entity_type="subjob", client=client) as w4,
        ):
            pass
        # By the parent's id while another job encloses (as a driver or a scheduler starts
        # them): the parent is found among the running jobs all the same.
        lot8 = Monitored(app=APP, business_key="LOT-8", client=client).__enter__()
        w5 = Monitored(app=APP, entity_type="subjob", parent_id=lot8.entity_id, client=client)
        w6 = Monitored(app=APP, entity_type="subjob", parent_id=lot8.entity_id, client=client)
        for job in (w5.__enter__(), w6.__enter__(), lot8):
            job.__exit__(None, None, None)
        assert client.flush(10)
    finally:
        client.close()
    keys = {
        e["entity"]["id"]: e["entity"].get("business_key")
        for e in filesystem_events(tmp_path / "ev")
    }
    assert keys[w1.entity_id] == keys[w2.entity_id] == "LOT-7"
    assert keys[w3.entity_id] == "OWN"
    assert keys[keyless.entity_id] is None
    assert keys[w4.entity_id] is None
    assert keys[w5.entity_id] == keys[w6.entity_id] == "LOT-8"


def test_console_mode_prints_each_event_as_sent(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("WAFERMON_CONSOLE", "1")
    client = make_client(tmp_path)
    try:
        with Monitored(app=APP, business_key="LOT-9", client=client) as job:
            job.tick(progress=0.5)
        assert client.flush(10)
    finally:
        client.close()
    printed = [
        json.loads(line.removeprefix("wafermon-sdk: send "))
        for line in capfd.readouterr().err.splitlines()
        if line.startswith("wafermon-sdk: send ")
    ]
    assert [e["kind"] for e in printed] == ["started", "progress", "finished"]
    stored = {e["event_id"]: e for e in filesystem_events(tmp_path / "ev")}
    assert all(stored[e["event_id"]] == e for e in printed)  # exactly what was sent


def test_console_mode_is_off_by_default_and_checked(tmp_path, capfd):
    client = make_client(tmp_path)
    try:
        with Monitored(app=APP, client=client):
            pass
        assert client.flush(10)
    finally:
        client.close()
    assert "wafermon-sdk: send" not in capfd.readouterr().err
    with pytest.raises(Exception, match="console: expected true or false"):
        make_client(tmp_path, console="maybe")
