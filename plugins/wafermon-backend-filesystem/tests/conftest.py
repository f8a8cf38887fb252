from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from wafermon import App, Entity, ErrorInfo, Event
from wafermon_backend_filesystem import (
    AdapterSettings,
    EmitterSettings,
    FilesystemEmitter,
    FilesystemQueryAdapter,
)

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
_seq = itertools.count()


def _make_event(
    *,
    time: datetime | None = None,
    site_id: str = "fab1",
    app: str = "etch",
    kind: str = "started",
    entity_type: str = "job",
    entity_id: str | None = None,
    business_key: str | None = None,
    **overrides: Any,
) -> Event:
    """An event with sensible defaults; successive events are one second apart from T0."""
    entity = Entity(
        type=entity_type,
        id=entity_id or f"j{next(_seq)}",
        parent_id="j0" if entity_type == "subjob" else None,
        business_key=business_key,
    )
    error = ErrorInfo(type="Boom", message="it broke") if kind == "failed" else None
    return Event(
        event_id=uuid4(),
        kind=kind,
        time=time or T0 + timedelta(seconds=next(_seq)),
        site_id=site_id,
        app=App(name=app),
        entity=entity,
        error=error,
        **overrides,
    )


@pytest.fixture
def make_event():
    """The event factory: ``make_event(site_id="fab2", kind="failed", ...)``."""
    return _make_event


@pytest.fixture
def t0() -> datetime:
    """Where make_event's clock starts (2026-11-28 09:30 UTC)."""
    return T0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "events"


@pytest.fixture
async def emitter(root: Path):
    """A started emitter that never rotates unless a test builds its own."""
    em = FilesystemEmitter("fs", EmitterSettings(root=root))
    await em.start()
    yield em
    await em.close()


@pytest.fixture
def adapter(root: Path) -> FilesystemQueryAdapter:
    return FilesystemQueryAdapter("fs", AdapterSettings(root=root))
