"""Fixtures: a started SqlStore on a fresh SQLite file or a fresh PostgreSQL database.

Every store test runs on both engines (the ``backend`` parameter). PostgreSQL tests need the
server scripts/test starts (WAFERMON_TEST_PG_URL); without it they fail, they never skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from wafermon import Secret
from wafermon.testing import EventFactory
from wafermon_backend_sql import Settings, SqlStore

#: Recent, so PostgreSQL routes the events into real daily partitions (not the default one).
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


@pytest.fixture(scope="session")
def make_event() -> EventFactory:
    """The kit's event factory from T0: ``make_event(kind="failed", entity_id="j1", ...)``."""
    return EventFactory(t0=T0)


@pytest.fixture(scope="session")
def t0() -> datetime:
    return T0


@pytest.fixture(scope="session")
def pg_server() -> str:
    url = os.environ.get("WAFERMON_TEST_PG_URL")
    if not url:
        pytest.fail(
            "WAFERMON_TEST_PG_URL is not set: run the suite through scripts/test, "
            "which starts PostgreSQL"
        )
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@contextlib.asynccontextmanager
async def fresh_database(backend: str, directory: Path, request: pytest.FixtureRequest):
    """A URL to an empty database: a SQLite file, or a new PostgreSQL database dropped after."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory}/data/wafermon.db"
        return
    server = sa.make_url(request.getfixturevalue("pg_server"))
    name = f"wm_test_{uuid.uuid4().hex[:16]}"
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    try:
        yield server.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def database_factory():
    """``async with database_factory(backend, directory, request) as url``, for wider scopes."""
    return fresh_database


@pytest.fixture
async def db_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A URL to an empty database of the backend under test."""
    async with fresh_database(backend, tmp_path, request) as url:
        yield url


MakeStore = Callable[..., Awaitable[SqlStore]]


@pytest.fixture
async def make_store(db_url: str) -> AsyncIterator[MakeStore]:
    """``await make_store(**settings)``: a started store on this test's database."""
    stores: list[SqlStore] = []

    async def make(start: bool = True, **settings: Any) -> SqlStore:
        settings.setdefault("url", Secret(db_url))
        store = SqlStore("managed", Settings(**settings))
        stores.append(store)
        if start:
            await store.start()
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> SqlStore:
    return await make_store()
