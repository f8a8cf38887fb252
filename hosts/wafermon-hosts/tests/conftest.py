"""Fixtures for the host tests: site configs on disk, plugins registered by name, gateways.

Tests never auto-load installed plugins: ``plugins`` registers the real sql and filesystem
plugins plus ``TestComponents`` (small but real components for failure cases) by name.
Event times are relative to now, inside the managed store's hot window.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import wafermon_backend_filesystem.plugin
import wafermon_backend_sql.plugin
from tests.helpers.gateway import FlakySqlStore, TestComponents, running
from wafermon.config import load_config
from wafermon.plugins import Plugins
from wafermon.testing import EventFactory
from wafermon_hosts.common.logs import configure_logging
from wafermon_hosts.gateway import create_app
from wafermon_hosts.gateway.app import load_gateway

configure_logging("INFO", force=True)

T0 = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
#: One factory for the session, as before: entity ids stay unique across tests.
EVENTS = EventFactory(t0=T0)


@pytest.fixture
def make_event() -> EventFactory:
    """The kit's event factory: ``make_event(kind="failed", entity_id="lot-7", ...)``."""
    return EVENTS


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def plugins() -> Plugins:
    p = Plugins()
    p.register(wafermon_backend_sql.plugin, "sql")
    p.register(wafermon_backend_filesystem.plugin, "filesystem")
    p.register(TestComponents(), "test-components")
    yield p
    FlakySqlStore.down = False


# -- site configs and gateways --------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'wafermon.db'}"


@pytest.fixture
def flaky_backends(sqlite_url: str) -> list[dict]:
    """``backends:`` whose managed store can be switched off (``FlakySqlStore.down``)."""
    return [{"name": "managed", "type": "flaky-sql", "config": {"url": sqlite_url}}]


@pytest.fixture
def write_config(tmp_path: Path, sqlite_url: str):
    """Write a site config; keyword arguments replace top-level sections or gateway keys."""

    def write(*, gateway: dict | None = None, sources: list | None = None, **top: Any) -> Path:
        config = {
            "site_id": "fab1",
            "gateway": gateway or {},
            "backends": [{"name": "managed", "type": "sql", "config": {"url": sqlite_url}}],
            "sources": sources or [],
            **top,
        }
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write


@pytest.fixture
def build_app(write_config, plugins):
    """A gateway app (lifespan not run yet) for a config written from the keyword arguments."""

    def build(*, span_exporter: Any = None, heartbeat_s: float | None = None, **kwargs: Any):
        loaded = load_config(write_config(**kwargs))
        gw = load_gateway(loaded, plugins, span_exporter=span_exporter, heartbeat_s=heartbeat_s)
        return create_app(gw)

    return build


@pytest.fixture
def start_gateway(build_app):
    """``async with start_gateway(gateway={...}, sources=[...]) as (client, app): ...``"""

    @contextlib.asynccontextmanager
    async def start(**kwargs: Any):
        app = build_app(**kwargs)
        async with running(app) as client:
            yield client, app

    return start


@pytest.fixture
async def client(start_gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A started gateway with default settings, no sources and no tokens."""
    async with start_gateway() as (c, _app):
        yield c


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database as a SQLAlchemy asyncpg URL; dropped afterwards."""
    base = os.environ.get("WAFERMON_TEST_PG_URL")
    if not base:
        pytest.fail(
            "WAFERMON_TEST_PG_URL is not set: start PostgreSQL with "
            'eval "$(scripts/services start)" (scripts/test does this)'
        )
    import asyncpg

    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    head, _, _db = base.rpartition("/")
    url = f"{head}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(base)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# -- sidecars -----------------------------------------------------------------------------------


@pytest.fixture
def sc_plugins(plugins) -> Plugins:
    """``plugins`` plus the test-only ``collect`` emitter (switches reset after the test)."""
    from tests.helpers.sidecar import Collect, SidecarTestComponents

    plugins.register(SidecarTestComponents(), "sc-test-components")
    yield plugins
    Collect.reset()


@pytest.fixture
def write_sidecar_config(tmp_path: Path):
    """Write a site config for a sidecar; ``sidecar`` keys replace the test defaults (a spool
    in tmp_path, fast retries), ``backends`` defaults to one ``collect`` backend named "a"."""
    from tests.helpers.sidecar import FAST_RETRY

    def write(*, sidecar: dict | None = None, backends: list | None = None, **top: Any) -> Path:
        section = {"spool": {"dir": str(tmp_path / "spool")}, "retry": FAST_RETRY}
        config = {
            "site_id": "fab1",
            "sidecar": {**section, **(sidecar or {})},
            "backends": backends if backends is not None else [{"name": "a", "type": "collect"}],
            **top,
        }
        path = tmp_path / "site.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write


@pytest.fixture
def build_sidecar_app(write_sidecar_config, sc_plugins):
    """A sidecar app (lifespan not run yet) for a config written from the keyword arguments."""
    from wafermon_hosts.sidecar import create_app as create_sidecar_app
    from wafermon_hosts.sidecar import load_sidecar

    def build(*, span_exporter: Any = None, **kwargs: Any):
        loaded = load_config(write_sidecar_config(**kwargs))
        return create_sidecar_app(load_sidecar(loaded, sc_plugins, span_exporter=span_exporter))

    return build


@pytest.fixture
def start_sidecar(build_sidecar_app):
    """``async with start_sidecar(sidecar={...}, backends=[...]) as (client, app): ...``"""

    @contextlib.asynccontextmanager
    async def start(**kwargs: Any):
        app = build_sidecar_app(**kwargs)
        async with running(app) as client:
            yield client, app

    return start


@pytest.fixture
async def sc_client(start_sidecar) -> AsyncIterator[httpx.AsyncClient]:
    """A started sidecar with one ``collect`` backend named "a" and no token."""
    async with start_sidecar() as (c, _app):
        yield c
