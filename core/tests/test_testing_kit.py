"""wafermon.testing: the contract suites pass on the kit's own components and fail on broken
ones; the event factory, the recording emitter's switches, the process helpers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from wafermon import Event, PermanentError, Query, RetryableError
from wafermon.testing import (
    EmitterContract,
    EventFactory,
    MemoryQueryAdapter,
    NotifierContract,
    QueryAdapterContract,
    RecordingEmitter,
    RecordingNotifier,
    RecordingPlugin,
    event_ids,
    ids,
    ndjson_batch,
)
from wafermon.wire import read_batch


class TestRecordingEmitterContract(EmitterContract):
    plugin = RecordingPlugin()
    type_name = "recording"
    idempotent = True

    @pytest.fixture
    def config(self):
        return {"idempotent": True}

    @pytest.fixture
    def down_config(self):
        return {"down": True}

    @pytest.fixture
    def stored_ids(self):
        async def read() -> list[str]:
            return ids(RecordingEmitter.got["contract"])

        return read


class TestMemoryQueryAdapterContract(QueryAdapterContract):
    plugin = RecordingPlugin()
    type_name = "recording"
    health_sees_outage = False  # it reads memory: there is no outage to see

    @pytest.fixture
    def config(self):
        return {"backend": "mem"}

    @pytest.fixture
    def down_config(self):
        return {"backend": "nothing-here"}

    @pytest.fixture
    def seed(self):
        async def store(events: list[Event]) -> None:
            await RecordingEmitter("mem").emit(events)

        return store


class TestRecordingNotifierContract(NotifierContract):
    plugin = RecordingPlugin()
    type_name = "recording"

    @pytest.fixture
    def config(self):
        return {}

    @pytest.fixture
    def down_config(self):
        return {"down": True}

    @pytest.fixture
    def delivered(self):
        async def rules() -> list[str]:
            return [a.rule for a in RecordingNotifier.alerts["contract"]]

        return rules


BROKEN = '''
import asyncio
import attrs
import pytest
from wafermon import Emitter, Health, hookimpl
from wafermon.testing import EmitterContract, ids

STORE = []

@attrs.frozen
class Settings:
    path: str
    secret_token: str = ""

class Broken(Emitter):
    """Claims idempotency but stores duplicates, loses a cancelled batch's retry, health raises."""
    Settings = Settings
    cancelled = set()

    async def emit(self, batch):
        key = tuple(e.event_id for e in batch)
        if key in self.cancelled:
            return  # forgets the retry of a cancelled batch
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled.add(key)
            raise
        STORE.extend(batch)

    async def health(self):
        if self.settings.path == "down":
            raise ConnectionError("refused")
        return Health(True)

@hookimpl
def register_emitters(register):
    register("broken", Broken)

class TestBroken(EmitterContract):
    plugin = __import__(__name__)
    type_name = "broken"
    idempotent = True

    @pytest.fixture
    def config(self):
        return {"path": "up", "secret_token": "s3cr3t-value"}

    @pytest.fixture
    def down_config(self):
        return {"path": "down"}

    @pytest.fixture
    def stored_ids(self):
        async def read():
            return ids(STORE)
        return read
'''


def test_the_emitter_contract_fails_a_broken_emitter(tmp_path):
    """The suite can fail: idempotency, cancellation and health faults are each caught."""
    (tmp_path / "test_broken.py").write_text(textwrap.dedent(BROKEN))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_broken.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    failed = {
        line.split("::")[-1].split(" ")[0]
        for line in result.stdout.splitlines()
        if line.startswith("FAILED")
    }
    assert failed == {
        "test_a_retried_batch_loses_nothing_and_is_stored_once_if_idempotent",
        "test_a_cancelled_emit_does_not_corrupt_later_ones",
        "test_health_never_raises_even_when_the_backend_is_down",
    }, result.stdout
    assert "test_an_unknown_setting_is_named_with_its_line PASSED" not in result.stdout


async def test_recording_switches_fail_the_way_backends_do(make_event):
    em = RecordingEmitter("a", fail_times=1)
    batch = [make_event(), make_event(entity_id="bad"), make_event()]
    with pytest.raises(RetryableError, match="a is down"):
        await em.emit(batch)
    RecordingEmitter.refuse.add("bad")
    with pytest.raises(PermanentError) as refused:
        await em.emit(batch)
    assert refused.value.event_ids == [batch[1].event_id]
    assert em.events == [batch[0], batch[2]]
    RecordingEmitter.down.add("a")
    with pytest.raises(RetryableError):
        await em.emit(batch)
    assert em.calls == 3


async def test_the_memory_adapter_reads_what_the_recorder_took(make_event):
    events = [make_event(site_id=s) for s in ("fab1", "fab2", "fab1")]
    await RecordingEmitter("mem").emit(events)
    result = await MemoryQueryAdapter("mem").query(Query(site_id="fab1"))
    assert result.events == [events[0], events[2]]


def test_recordings_start_empty_in_every_test():
    assert not RecordingEmitter.got
    assert not RecordingEmitter.down


def test_the_factory_makes_valid_ordered_events():
    factory = EventFactory()
    events = [factory(), factory(kind="failed"), factory(entity_type="subjob")]
    assert events == sorted(events, key=lambda e: e.sort_key)
    assert events[1].error is not None
    assert events[2].entity.parent_id == "j0"


def test_ndjson_batch_is_valid_wire_and_ids_read_back():
    body = ndjson_batch(50)
    decoded = read_batch(body)
    assert len(decoded.events) == 50
    assert not decoded.rejected
    assert event_ids(body) == [str(w.to_event().event_id) for w in decoded.events]


def test_recording_plugin_registers_every_kind(recording_plugins):
    for kind in ("emitter", "query_adapter", "notifier"):
        assert "recording" in recording_plugins.types(kind)


def test_the_contracts_default_secrets_include_nested_sections() -> None:
    """A backend whose credentials sit in a section (zabbix's ``api: {password}``) needs no
    secret_values fixture of its own."""
    from wafermon.testing.contract import _secret_strings

    config = {
        "url": "https://example.org",
        "token": "tok-1234",
        "key_id": "abc",  # too short to look for in messages
        "api": {"user": "Admin", "password": "hunter22", "tls": {"client_key": "PEM-KEY"}},
    }
    assert _secret_strings(config) == ["tok-1234", "hunter22", "PEM-KEY"]
