"""Fixtures for the gateway emitter tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from wafermon import App, Entity, Event


@pytest.fixture
def make_events():
    def make(n: int, **metadata: object) -> list[Event]:
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        return [
            Event(
                event_id=uuid.uuid4(),
                kind="started",
                time=t0 + timedelta(seconds=i),
                site_id="fab1",
                app=App(name="etch"),
                entity=Entity(type="job", id=f"j-{i}"),
                metadata=dict(metadata),
            )
            for i in range(n)
        ]

    return make
