"""The plugin as the core sees it: registration, site config, settings, failures."""

from __future__ import annotations

import socket

import asyncpg
import pytest
import sqlalchemy as sa

import wafermon_backend_sql.plugin
from wafermon import ConfigError, Query, RetryableError, Secret
from wafermon.config import load_config
from wafermon.errors import FieldValueError
from wafermon.plugins import Plugins
from wafermon_backend_sql import Settings, SqlStore
from wafermon_backend_sql.store import engine_url


@pytest.fixture
def plugins() -> Plugins:
    p = Plugins()
    p.register(wafermon_backend_sql.plugin, "sql")
    return p


def test_registers_one_class_as_emitter_and_query_adapter(plugins):
    assert plugins.types("emitter")["sql"].cls is SqlStore
    assert plugins.types("query_adapter")["sql"].cls is SqlStore
    (info,) = plugins.info()
    assert info.error is None
    assert sorted(info.provides) == ["emitter:sql", "query_adapter:sql"]


async def test_built_from_site_config_and_usable(tmp_path, plugins, monkeypatch, make_event):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative SQLite paths are relative to the config file
    path = tmp_path / "site.yaml"
    path.write_text(
        "site_id: fab1\n"
        "backends:\n"
        "  - name: managed\n"
        "    type: sql\n"
        '    config: {url: "sqlite+aiosqlite:///./data/x.db", hot_retention: 48h}\n'
        "sources:\n"
        "  - {name: managed, type: sql, config: {url: 'sqlite:///./data/x.db'}}\n"
    )
    loaded = load_config(path)
    (store,) = loaded.build("backends", plugins)
    assert isinstance(store, SqlStore)
    assert store.name == "managed"
    assert store.settings.url == Secret(f"sqlite+aiosqlite:///{tmp_path}/data/x.db")
    assert store.settings.hot_retention == 48 * 3600
    assert store.settings.pool_size == 10
    assert store.settings.batch_chunk == 5000
    assert "x.db" not in repr(store.settings)  # the URL may hold a password: masked
    (source,) = loaded.build("sources", plugins)
    await store.start()
    try:
        event = make_event(entity_id="cfg")
        assert await store.ingest([event]) == [True]
        assert (tmp_path / "data" / "x.db").is_file()
        assert not (elsewhere / "data").exists()
        await source.start()
        assert (await source.job_detail("cfg")).events == [event]
    finally:
        await store.close()
        await source.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x@y/z", "unsupported scheme 'mysql'"),
        ("sqlite+aiosqlite://", "SQLite needs a file path"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_urls_name_the_setting(tmp_path, plugins, url, message):
    path = tmp_path / "site.yaml"
    path.write_text(
        f"site_id: fab1\nbackends:\n  - name: managed\n    type: sql\n    config:\n      url: '{url}'\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path).build("backends", plugins)
    assert "backends[0].config.url" in str(info.value)
    assert message in str(info.value)


def test_url_rewriting():
    assert engine_url(Secret("postgresql://u:pw@h:5/db")).drivername == "postgresql+asyncpg"
    assert engine_url(Secret("postgres://h/db")).drivername == "postgresql+asyncpg"
    assert engine_url(Secret("sqlite:///a.db")).drivername == "sqlite+aiosqlite"
    with pytest.raises(FieldValueError):
        Settings(url=Secret("sqlite:///a.db"), pool_size=0)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


async def test_server_down_is_retryable(make_event):
    store = SqlStore("managed", Settings(url=f"postgresql://postgres@127.0.0.1:{_closed_port()}/x"))
    try:
        with pytest.raises(RetryableError, match="database unavailable"):
            await store.start()
        with pytest.raises(RetryableError):
            await store.emit([make_event()])
        health = await store.health()
        assert not health.ok
        assert "postgres@" not in health.detail
    finally:
        await store.close()


async def test_unwritable_sqlite_path_is_retryable(tmp_path):
    (tmp_path / "file").write_text("")
    store = SqlStore("managed", Settings(url=f"sqlite+aiosqlite:///{tmp_path}/file/x.db"))
    with pytest.raises(RetryableError):
        await store.start()
    await store.close()


async def test_a_full_sqlite_database_is_retryable_and_the_batch_leaves_nothing(
    tmp_path, make_event
):
    """SQLite batches are written through the driver's own connection, whose errors are
    sqlite3's, not SQLAlchemy's: a full disk must still be the contract's RetryableError (the
    gateway answers 503 with Retry-After, not 500), and none of the batch may stay."""
    store = SqlStore("managed", Settings(url=Secret(f"sqlite+aiosqlite:///{tmp_path}/w.db")))
    await store.start()
    try:
        await store.ingest([make_event(entity_id="before")])
        engine = store.dialect.engine

        @sa.event.listens_for(engine.sync_engine, "connect")
        def no_room(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA max_page_count = 1")  # no page beyond what the file has
            cursor.close()

        await engine.dispose()  # new connections, with the cap
        big = [make_event(entity_id="big", metadata={"pad": "x" * 4000}) for _ in range(100)]
        with pytest.raises(RetryableError, match="database or disk is full"):
            await store.ingest(big)

        assert await store.job_detail("big") is None
        assert [e.entity.id for e in (await store.query(Query(limit=1000))).events] == ["before"]
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_database_going_away_is_retryable_and_unhealthy(store, make_event, pg_server, db_url):
    await store.ingest([make_event()])
    assert (await store.health()).ok
    admin = await asyncpg.connect(
        sa.make_url(pg_server).set(drivername="postgresql").render_as_string(False)
    )
    try:
        name = sa.make_url(db_url).database
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()
    with pytest.raises(RetryableError):
        await store.emit([make_event()])
    assert not (await store.health()).ok


async def test_stats_report_the_connection_pool(tmp_path):
    from wafermon_backend_sql import SqlStore
    from wafermon_backend_sql.store import Settings

    store = SqlStore("m", Settings(url=f"sqlite+aiosqlite:///{tmp_path}/s.db"))
    assert store.stats() == {}  # not started
    await store.start()
    try:
        stats = store.stats()
        assert stats["pool_checked_out"] == 0
        assert stats["pool_size"] >= 1
    finally:
        await store.close()
