"""The wafermon.testing contract suites, run against the SQL store on SQLite and PostgreSQL.

The store claims idempotency by event_id (its gate table), so the suite checks each event is
stored once however often it is sent. "Down" is a PostgreSQL URL on a port nobody listens on.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import wafermon_backend_sql.plugin
from wafermon import Event, Secret
from wafermon.testing import EmitterContract, QueryAdapterContract, free_port
from wafermon_backend_sql import Settings, SqlStore


@pytest.fixture
def down_url() -> str:
    return f"postgresql+asyncpg://wafermon:not-the-password@127.0.0.1:{free_port()}/nothing"


class TestSqlStoreEmitterContract(EmitterContract):
    plugin = wafermon_backend_sql.plugin
    type_name = "sql"
    idempotent = True

    @pytest.fixture
    def config(self, db_url):
        return {"url": db_url, "connect_timeout": "2s"}

    @pytest.fixture
    def down_config(self, down_url):
        return {"url": down_url, "connect_timeout": "2s"}

    @pytest.fixture
    def secret_values(self, db_url):
        password = sa.make_url(db_url).password
        return [password] if password else []

    @pytest.fixture
    async def stored_ids(self, db_url):
        engine = create_async_engine(db_url)

        async def read() -> list[str]:
            async with engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT event_id FROM events"))
                return [str(row[0]) for row in rows]

        yield read
        await engine.dispose()


class TestSqlStoreAdapterContract(QueryAdapterContract):
    plugin = wafermon_backend_sql.plugin
    type_name = "sql"

    @pytest.fixture
    def config(self, db_url):
        return {"url": db_url}

    @pytest.fixture
    def down_config(self, down_url):
        return {"url": down_url, "connect_timeout": "2s"}

    @pytest.fixture
    async def seed(self, db_url):
        store = SqlStore("managed", Settings(url=Secret(db_url)))
        await store.start()

        async def write(events: list[Event]) -> None:
            await store.emit(events)

        yield write
        await store.close()
