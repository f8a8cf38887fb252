"""Fixtures: a fresh bucket on the real SeaweedFS, stores on SQLite and PostgreSQL, events.

The S3 server is the one ``scripts/services start s3`` runs (WAFERMON_TEST_S3_*), PostgreSQL
the one ``scripts/services start pg`` runs (WAFERMON_TEST_PG_URL). Without them the tests fail
and say how to start them; they never skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import sqlalchemy as sa

from wafermon import App, Entity, ErrorInfo, Event, Metrics, Secret
from wafermon_backend_s3 import Bucket, S3Settings

_seq = itertools.count(1)
#: A fixed clock for the tests: midday, so "N days ago" never straddles midnight.
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def s3_env() -> dict[str, str]:
    names = ("ENDPOINT", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
    values = {n: os.environ.get(f"WAFERMON_TEST_S3_{n}") for n in names}
    if not all(values.values()):
        pytest.fail(
            "WAFERMON_TEST_S3_ENDPOINT/_ACCESS_KEY_ID/_SECRET_ACCESS_KEY are not set: run "
            'eval "$(scripts/services start s3)" first (scripts/test does)'
        )
    return values  # type: ignore[return-value]


@pytest.fixture(scope="session")
def s3_config() -> dict[str, Any]:
    """The connection part of an s3 backend/source ``config:`` (bucket added per test)."""
    env = s3_env()
    return {
        "endpoint_url": env["ENDPOINT"],
        "region": "us-east-1",
        "path_style": True,
        "access_key_id": env["ACCESS_KEY_ID"],
        "secret_access_key": env["SECRET_ACCESS_KEY"],
        "max_attempts": 2,
    }


@pytest.fixture
async def bucket_name(s3_config: dict[str, Any]) -> AsyncIterator[str]:
    """A new empty bucket, emptied and removed after the test."""
    name = f"wm-test-{uuid.uuid4().hex[:16]}"
    bucket = Bucket(S3Settings(bucket=name, **s3_config))
    await bucket.open()
    try:
        await bucket.client.create_bucket(Bucket=name)
        yield name
        keys = [o.key for o in await bucket.list_objects("")]
        await bucket.delete(keys)
        await bucket.client.delete_bucket(Bucket=name)
    finally:
        await bucket.close()


@pytest.fixture
def settings(s3_config: dict[str, Any], bucket_name: str):
    """``settings(cls, **overrides)``: a Settings instance for this test's bucket."""

    def make(cls: type, **overrides: Any) -> Any:
        return cls(**{**s3_config, "bucket": bucket_name, **overrides})

    return make


@pytest.fixture
async def bucket(settings) -> AsyncIterator[Bucket]:
    """A raw client on this test's bucket, for looking at what the components wrote."""
    b = Bucket(settings(S3Settings, prefix="wafermon"))
    await b.open()
    yield b
    await b.close()


def _make_event(
    *,
    time: datetime,
    site_id: str = "fab1",
    kind: str = "started",
    entity_id: str | None = None,
    app: str = "etch",
    metadata: dict[str, Any] | None = None,
) -> Event:
    n = next(_seq)
    return Event(
        event_id=uuid4(),
        kind=kind,
        time=time,
        site_id=site_id,
        app=App(name=app),
        entity=Entity(type="job", id=entity_id or f"j{n}", business_key=f"lot{n % 7}"),
        metrics=Metrics(duration_s=float(n % 100)),
        metadata=metadata or {},
        error=ErrorInfo(type="Boom", message="it broke") if kind == "failed" else None,
    )


@pytest.fixture(scope="session")
def make_event():
    return _make_event


def spread(start: datetime, count: int, step: timedelta, **kwargs: Any) -> list[Event]:
    """``count`` events from ``start``, ``step`` apart, kinds and apps mixed."""
    kinds = ("started", "progress", "finished", "failed")
    return [
        _make_event(
            time=start + i * step, kind=kinds[i % 4], app=("etch", "litho")[i % 2], **kwargs
        )
        for i in range(count)
    ]


# -- managed stores -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def db_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to an empty database: a SQLite file, or a new PostgreSQL database dropped after."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/wafermon.db"
        return
    url = os.environ.get("WAFERMON_TEST_PG_URL")
    if not url:
        pytest.fail('WAFERMON_TEST_PG_URL is not set: run eval "$(scripts/services start pg)"')
    server = sa.make_url(url)
    name = f"wm_s3_{uuid.uuid4().hex[:16]}"
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
        with contextlib.suppress(Exception):
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


@pytest.fixture
async def store(db_url: str):
    from wafermon_backend_sql import Settings, SqlStore

    s = SqlStore("managed", Settings(url=Secret(db_url)))
    await s.start()
    yield s
    await s.close()
