"""Fixtures for the webhook emitter tests: events, and a running receiver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from webhook_receiver import running_receiver

from wafermon import App, Entity, ErrorInfo, Event


@pytest.fixture
async def receiver():
    async with running_receiver() as running:
        yield running


@pytest.fixture
def make_events():
    def make(n: int, kind: str = "finished", **entity: str) -> list[Event]:
        t0 = datetime.now(UTC) - timedelta(minutes=10)
        return [
            Event(
                event_id=uuid.uuid4(),
                kind=kind,
                time=t0 + timedelta(seconds=i),
                site_id="fab1",
                app=App(name="etch", version="2.1"),
                entity=Entity(type="job", id=f"j-{i}", business_key=f"LOT-{i}", **entity),
                error=ErrorInfo(type="ChamberFault", message=f"pressure <low> & drop {i}")
                if kind == "failed"
                else None,
            )
            for i in range(n)
        ]

    return make
