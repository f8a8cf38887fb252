"""Hot and archived as one: the real ``wafermon gateway`` archives in the background and its
unified view returns both; ``wafermon archive`` runs the same pass from the command line."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx
import yaml
from conftest import NOW
from test_s3_archive import DAYS, five_days

from wafermon import Secret, decode_event
from wafermon.testing import Proc, processes, wafermon_command
from wafermon_backend_sql import Settings, SqlStore

WAFERMON = wafermon_command()


def write_site(tmp_path: Path, s3_config: dict, bucket_name: str, **gateway) -> Path:
    config = {
        "site_id": "fab1",
        "gateway": gateway,
        "backends": [
            {
                "name": "managed",
                "type": "sql",
                "config": {"url": f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"},
            }
        ],
        "sources": [
            {
                "name": "archive",
                "type": "s3",
                "config": {
                    **s3_config,
                    "bucket": bucket_name,
                    "archive": {"hot_window": "2d", "compact": False},
                },
            }
        ],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def ingest(tmp_path: Path, events) -> None:
    store = SqlStore("managed", Settings(url=Secret(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")))
    await store.start()
    try:
        await store.ingest(events)
    finally:
        await store.close()


def unified(url: str, **params) -> tuple[list, list[dict]]:
    """Every event of /v1/data/unified for ``params``, following cursors; and each page's
    per-source status."""
    events, statuses, cursor = [], [], None
    while True:
        page = (
            httpx.get(
                f"{url}/v1/data/unified",
                params={**params, **({"cursor": cursor} if cursor else {})},
            )
            .raise_for_status()
            .json()
        )
        events += [decode_event(json.dumps(e)) for e in page["events"]]
        statuses.append(page["sources"])
        cursor = page["next_cursor"]
        if cursor is None:
            return events, statuses


def managed_count(url: str) -> int:
    body = {"source": "managed", "query": {"limit": 10_000}}
    return len(
        httpx.post(f"{url}/v1/query/external", json=body).raise_for_status().json()["events"]
    )


async def test_the_gateway_archives_in_the_background_and_unifies_hot_and_cold(
    tmp_path, s3_config, bucket_name
):
    written = five_days()  # 3 days older than the 2-day hot window, 2 days hot
    await ingest(tmp_path, written)
    config = write_site(tmp_path, s3_config, bucket_name, retention_interval="1s")
    with processes() as procs:
        procs.append(gateway := Proc("gateway", config, log_dir=tmp_path, ready=(200,)).start())
        url = gateway.url
        deadline = time.monotonic() + 60
        while managed_count(url) != 120:  # the background pass moves the 3 old days out
            assert time.monotonic() < deadline, "the gateway did not archive within 60 s"
            time.sleep(0.5)
        since = (DAYS[0] - timedelta(hours=1)).isoformat()
        until = (NOW + timedelta(days=1)).isoformat()
        got, statuses = unified(url, since=since, until=until, limit=70)
        assert [e.event_id for e in got] == [
            e.event_id for e in sorted(written, key=lambda e: e.sort_key)
        ]
        assert got == sorted(written, key=lambda e: e.sort_key)
        assert all(
            s["managed"]["status"] == "ok" and s["archive"]["status"] == "ok" for s in statuses
        )
        # The first pages come from the archive alone, the last from the store alone.
        assert statuses[0]["archive"]["count"] > 0
        assert statuses[-1]["managed"]["count"] > 0
        # Archived jobs keep their state (the entity rows stay in the store), and their
        # detail lists their archived events.
        job = written[0].entity.id
        detail = httpx.get(f"{url}/v1/jobs/{job}").raise_for_status().json()
        assert detail["job"]["entity_id"] == job
        assert [e["event_id"] for e in detail["events"]] == [str(written[0].event_id)]


async def test_wafermon_archive_runs_one_pass_and_is_idempotent(tmp_path, s3_config, bucket_name):
    written = five_days()
    await ingest(tmp_path, written)
    config = write_site(tmp_path, s3_config, bucket_name)
    first = subprocess.run(
        [WAFERMON, "archive", "-c", str(config)], capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["archived"] == 180
    second = subprocess.run(
        [WAFERMON, "archive", "-c", str(config)], capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["archived"] == 0
    assert "wafermon-secret" not in first.stdout + first.stderr  # no credential in the output


def test_wafermon_archive_names_a_missing_archive_source(tmp_path):
    config = tmp_path / "site.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site_id": "fab1",
                "backends": [
                    {
                        "name": "managed",
                        "type": "sql",
                        "config": {"url": f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"},
                    }
                ],
            }
        )
    )
    run = subprocess.run(
        [WAFERMON, "archive", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert "no enabled s3 source with an archive: section" in run.stderr
