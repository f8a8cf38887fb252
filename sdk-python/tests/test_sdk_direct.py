"""Direct mode: the SDK runs the site's backend plugins itself (no sidecar), and ``both``.

The backends are built from a site config through the core's plugin discovery, exactly as the
sidecar builds them: the real ``sql`` store (SQLite, and PostgreSQL from WAFERMON_TEST_PG_URL)
and the real ``filesystem`` backend. Reading back uses the sql store's own job view.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from sdk_helpers import filesystem_events, running_stack, write_yaml

import wafermon_sdk
from wafermon import ConfigError
from wafermon_backend_sql import SqlStore
from wafermon_backend_sql.store import Settings as SqlSettings
from wafermon_sdk import AppRef, Client, Monitored

APP = AppRef(name="direct-test", version="1.0")


def run_job(client: Client, subjobs: int = 3) -> Monitored:
    with Monitored(
        app=APP, business_key="lot-direct", metadata={"tool": "etch-07"}, client=client
    ) as job:
        for wafer in range(subjobs):
            with Monitored(
                app=APP, entity_type="subjob", sub_key=f"w{wafer}", client=client
            ) as sub:
                sub.tick(extra_meta={"progress": 1.0})
    return job


async def read_job(url: str, entity_id: str):
    store = SqlStore("check", SqlSettings(url=url))
    await store.start()
    try:
        return await store.job_detail(entity_id)
    finally:
        await store.close()


def check_stored(detail, subjobs: int = 3) -> None:
    assert detail is not None
    assert detail.job.status == "finished"
    assert detail.job.metadata == {"tool": "etch-07"}
    assert detail.job.business_key == "lot-direct"
    assert detail.job.duration_s is not None
    assert len(detail.subjobs) == subjobs
    assert all(s.status == "finished" and s.progress == 1.0 for s in detail.subjobs)


def sql_site(tmp_path: Path, url: str) -> Path:
    return write_yaml(
        tmp_path / "site.yaml",
        {
            "site_id": "fab1",
            "backends": [{"name": "managed", "type": "sql", "config": {"url": url}}],
        },
    )


def test_direct_to_sqlite(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path / 'direct.db'}"
    monkeypatch.setenv("WAFERMON_MODE", "direct")
    monkeypatch.setenv("WAFERMON_CONFIG", str(sql_site(tmp_path, url)))
    client = wafermon_sdk.initialize()
    assert client.site_id == "fab1"  # taken from the site config
    job = run_job(client)
    assert wafermon_sdk.flush(20), client.stats()
    assert client.stats()["sinks"]["direct.managed"]["sent"] == 2 + 3 * 3
    wafermon_sdk.close()
    check_stored(asyncio.run(read_job(url, job.entity_id)))


@pytest.fixture
def pg_database():
    import asyncpg

    base = os.environ.get("WAFERMON_TEST_PG_URL")
    if not base:
        pytest.fail(
            "WAFERMON_TEST_PG_URL is not set: start PostgreSQL with "
            'eval "$(scripts/services start)" (scripts/test does this)'
        )
    name = f"sdk_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    head, _, _db = base.rpartition("/")
    yield f"{head}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_direct_url_writes_the_filesystem_layout_without_a_site_config(tmp_path, monkeypatch):
    root = tmp_path / "events root"  # a space: the URL is percent-encoded
    monkeypatch.setenv("WAFERMON_MODE", "direct")
    monkeypatch.setenv("WAFERMON_DIRECT_URL", root.as_uri())
    monkeypatch.setenv("WAFERMON_SITE_ID", "fab7")
    client = wafermon_sdk.initialize()
    assert repr(client) == "<Client mode=direct sinks=['direct.filesystem']>"
    job = run_job(client, subjobs=2)
    assert wafermon_sdk.close(20)
    events = filesystem_events(root)
    assert len(events) == 2 + 2 * 3
    assert {e["site_id"] for e in events} == {"fab7"}
    day = events[0]["time"][:10]
    assert sorted(p.name for p in (root / "fab7").iterdir()) == [day]
    assert [e["kind"] for e in events if e["entity"]["id"] == job.entity_id] == [
        "started",
        "finished",
    ]
    assert client.stats()["sinks"]["direct.filesystem"]["sent"] == len(events)


def test_direct_url_without_the_filesystem_plugin_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERMON_LOAD_PLUGINS", "none-such")  # the core loads no plugin
    with pytest.raises(ConfigError) as info:
        Client(mode="direct", direct_url=tmp_path.as_uri())
    assert str(info.value).startswith(
        "WAFERMON_DIRECT_URL: file:// direct mode: no installed plugin provides "
        "emitter type 'filesystem'"
    )


def test_direct_to_postgresql(tmp_path, pg_database):
    client = Client(mode="direct", site_config=str(sql_site(tmp_path, pg_database)))
    job = run_job(client, subjobs=5)
    assert client.flush(30), client.stats()
    client.close()
    check_stored(asyncio.run(read_job(pg_database, job.entity_id)), subjobs=5)


def test_direct_backend_down_at_start_is_spooled_and_replayed(tmp_path):
    """A backend that cannot start (its root is a file) is retried; events wait in the spool."""
    root = tmp_path / "events"
    root.write_text("not a directory")
    site = write_yaml(
        tmp_path / "site.yaml",
        {
            "site_id": "fab1",
            "backends": [{"name": "fs", "type": "filesystem", "config": {"root": str(root)}}],
        },
    )
    client = Client(
        mode="direct",
        site_config=str(site),
        max_retries=1,
        retry_base_delay="10ms",
        replay_interval="50ms",
    )
    job = run_job(client, subjobs=2)
    assert client.flush(10) is False
    stats = client.stats()
    assert stats["spooled"] == 2 + 2 * 3
    assert stats["spool_lag"] > 0
    assert "direct.fs" in stats["sinks"]["direct.fs"]["last_error"]
    root.unlink()
    assert client.flush(10), client.stats()
    events = filesystem_events(root)
    assert len(events) == 8
    assert {e["entity"]["id"] for e in events if e["entity"]["type"] == "job"} == {job.entity_id}
    client.close()


def test_both_modes_deliver_to_the_sidecar_and_the_local_backend(tmp_path):
    root = tmp_path / "local-events"
    site = write_yaml(
        tmp_path / "site.yaml",
        {
            "site_id": "fab1",
            "backends": [{"name": "fs", "type": "filesystem", "config": {"root": str(root)}}],
        },
    )
    with running_stack(tmp_path / "stack") as stack:
        client = Client(mode="both", sidecar_url=stack.sidecar_url, site_config=str(site))
        job = run_job(client)
        assert client.flush(20), client.stats()
        assert set(client.stats()["sinks"]) == {"sidecar", "direct.fs"}
        stack.wait_for_job(
            job.entity_id, lambda d: len(d["subjobs"]) == 3 and d["job"]["status"] == "finished"
        )
        local = filesystem_events(root)
        assert len(local) == 2 + 3 * 3
        client.close()
