"""The wafermon.testing contract suites, run against the filesystem emitter and adapter.

The backend is a real directory in tmp_path; "down" is a root whose parent is a regular file
(nothing can be created there, as with an unmounted or read-only volume).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

import wafermon_backend_filesystem.plugin
from wafermon import Event
from wafermon.testing import EmitterContract, QueryAdapterContract
from wafermon_backend_filesystem import EmitterSettings, FilesystemEmitter


def stored_event_ids(root: Path) -> list[str]:
    """Every event_id of every JSONL file under ``root`` (plain and gzipped); a torn or
    corrupt line fails the test."""
    found = []
    for path in sorted(root.rglob("events*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as file:
            found.extend(orjson.loads(line)["event_id"] for line in file)
    return found


@pytest.fixture
def down_root(tmp_path: Path) -> Path:
    (tmp_path / "not-a-dir").write_text("a file where the root's parent should be\n")
    return tmp_path / "not-a-dir" / "events"


class TestFilesystemEmitterContract(EmitterContract):
    plugin = wafermon_backend_filesystem.plugin
    type_name = "filesystem"
    idempotent = False  # at-least-once: a retry may store a line twice; the adapter dedupes

    @pytest.fixture
    def config(self, tmp_path):
        return {"root": str(tmp_path / "events"), "rotate_bytes": "4KiB"}

    @pytest.fixture
    def down_config(self, down_root):
        return {"root": str(down_root)}

    @pytest.fixture
    def stored_ids(self, tmp_path):
        async def read() -> list[str]:
            return stored_event_ids(tmp_path / "events")

        return read


class TestFilesystemAdapterContract(QueryAdapterContract):
    plugin = wafermon_backend_filesystem.plugin
    type_name = "filesystem"

    @pytest.fixture
    def config(self, tmp_path):
        return {"root": str(tmp_path / "events")}

    @pytest.fixture
    def down_config(self, down_root):
        return {"root": str(down_root)}

    @pytest.fixture
    async def seed(self, tmp_path):
        emitter = FilesystemEmitter("fs", EmitterSettings(root=tmp_path / "events"))
        await emitter.start()

        async def store(events: list[Event]) -> None:
            await emitter.emit(events)

        yield store
        await emitter.close()
