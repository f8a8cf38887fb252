from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from wafermon.testing import EventFactory
from wafermon_backend_filesystem import (
    AdapterSettings,
    EmitterSettings,
    FilesystemEmitter,
    FilesystemQueryAdapter,
)

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


@pytest.fixture
def make_event() -> EventFactory:
    """The kit's event factory from T0: ``make_event(site_id="fab2", kind="failed", ...)``."""
    return EventFactory(t0=T0)


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
