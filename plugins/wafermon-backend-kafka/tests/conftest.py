"""Fixtures against the real Kafka broker scripts/services starts (WAFERMON_TEST_KAFKA).

Without it every test here fails (never skips): run ``eval "$(scripts/services start kafka pg)"``.
Each test uses its own topics and consumer group.
"""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wafermon import App, Entity, Event, Metrics, Source

REPO = Path(__file__).resolve().parents[3]
# The hosts' own test helpers start real sidecar and gateway processes; one copy of them.
sys.path.insert(0, str(REPO / "hosts" / "wafermon-hosts"))  # for tests.helpers

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
_seq = itertools.count()


def env(name: str, service: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f'{name} is not set: eval "$(scripts/services start {service})"')
    return value


@pytest.fixture(scope="session")
def bootstrap() -> str:
    return env("WAFERMON_TEST_KAFKA", "kafka")


@pytest.fixture
def topic() -> str:
    return f"wm-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kafka_config(bootstrap: str, topic: str) -> dict[str, Any]:
    """A ``config:`` mapping as a site config writes it, on this test's own topics."""
    return {
        "bootstrap_servers": [bootstrap],
        "topic": topic,
        "dead_letter_topic": f"{topic}-dead",
        "partitions": 6,
    }


def make_event(*, job: str | None = None, kind: str = "started", site_id: str = "fab1", **kw):
    """A valid event; subjob events name their job in ``parent_id``."""
    n = next(_seq)
    parent = kw.pop("parent_id", None)
    return Event(
        event_id=uuid.uuid4(),
        kind=kind,
        time=T0 + timedelta(seconds=n, microseconds=n),
        site_id=site_id,
        app=App(name="etch", version="1.0"),
        entity=Entity(type="subjob" if parent else "job", id=job or f"j{n}", parent_id=parent),
        metrics=Metrics(progress=0.5),
        source=Source(host="node-1", pid=42, sdk="python", sdk_version="0.1.0"),
        **kw,
    )


@pytest.fixture
async def pg():
    """A fresh PostgreSQL database on the scripts/services server; dropped afterwards."""
    from kafka_helpers import drop_database, fresh_database

    url = await fresh_database(env("WAFERMON_TEST_PG_URL", "pg"))
    yield url
    await drop_database(url)


@pytest.fixture
def stream(kafka_config):
    """The gateways' consumer config: a short session so a killed member is noticed soon."""
    return {**kafka_config, "group": "gateways", "session_timeout": "6s"}
