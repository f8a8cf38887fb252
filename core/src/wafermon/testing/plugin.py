"""The pytest plugin of ``wafermon.testing`` (entry point ``pytest11``: loaded by pytest in any
environment where wafermon-core is installed with its ``testing`` extra).

Fixtures:

- ``make_event``: an ``EventFactory`` (``make_event(kind="failed", site_id="fab2")``);
- ``recording``: the ``RecordingEmitter`` class, its recordings and switches cleared;
- ``recording_plugins``: a ``Plugins`` with no entry points and the ``recording`` types;
- ``wafermon_process``: ``wafermon_process("sidecar", config)`` starts a real host process on a
  free port (a ``Proc``), killed at the end of the test.

Every test starts and ends with empty recordings (an autouse fixture; it only clears dicts).
A conftest fixture of the same name overrides any of these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..plugins import Plugins
from .events import EventFactory
from .processes import Proc, processes
from .recording import RecordingEmitter, RecordingPlugin


@pytest.fixture(autouse=True)
def _wafermon_recordings_cleared() -> Iterator[None]:
    RecordingEmitter.reset()
    yield
    RecordingEmitter.reset()


@pytest.fixture
def make_event() -> EventFactory:
    """A fresh event factory: valid events, one second apart from two hours ago."""
    return EventFactory()


@pytest.fixture
def recording() -> type[RecordingEmitter]:
    """The in-memory emitter class: ``recording.got["a"]``, ``recording.down.add("a")``."""
    return RecordingEmitter


@pytest.fixture
def recording_plugins() -> Plugins:
    """Plugins with nothing from entry points and the ``recording`` types registered."""
    plugins = Plugins()
    plugins.register(RecordingPlugin(), "recording")
    return plugins


@pytest.fixture
def wafermon_process(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """``wafermon_process(host, config, **proc_options)``: a started Proc, killed afterwards."""
    with processes() as started:

        def start(host: str, config: Path, *, wait: bool = True, **options: Any) -> Proc:
            options.setdefault("log_dir", tmp_path)
            proc = Proc(host, config, **options)
            started.append(proc)
            return proc.start(wait=wait)

        yield start
