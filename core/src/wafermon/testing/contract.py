"""Contract tests any Emitter, QueryAdapter or Notifier runs against itself.

Subclass the contract in your plugin's tests, name the plugin and type, and define the fixtures
that connect it to a real backend::

    from wafermon.testing import EmitterContract
    import wafermon_backend_csv.plugin

    class TestCsvContract(EmitterContract):
        plugin = wafermon_backend_csv.plugin
        type_name = "csv"

        @pytest.fixture
        def config(self, tmp_path):            # a working backend's ``config:`` mapping
            return {"path": str(tmp_path / "events.csv")}

        @pytest.fixture
        def down_config(self, tmp_path):       # the same backend, unreachable
            ...

        @pytest.fixture
        def stored_ids(self, tmp_path):        # what the backend holds, duplicates included
            async def read() -> list[str]: ...
            return read

Components are built the way a host builds them: a site config file with one entry, loaded by
``wafermon.config.load_config`` and built through a ``Plugins`` holding only your plugin, so the
settings are structured (and checked) exactly as in production. What every test checks:

- **retries**: a batch emitted twice (the router's retry after a timeout) and an overlapping
  batch lose nothing; a backend that says ``idempotent = True`` stores each event once;
- **cancellation**: an emit cancelled at any point (the router's timeout) leaves the backend
  able to take that batch again and later ones, readable;
- **health**: ``health()`` returns a Health, never raises and never hangs, even when the
  backend is down, before start and after close; a down backend's ``emit`` raises
  ``RetryableError`` (the router retries it), and ``close`` never raises;
- **settings**: an unknown key, a missing required key and a wrongly typed value are each
  reported naming the key path (``backends[0].config.<key>``; an unknown key with its line);
  no secret of the config appears in the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType, NoneType, UnionType
from typing import Any, ClassVar
from uuid import UUID

import attrs
import pytest
import yaml

from ..config import ByteSize, Seconds, Secret, load_config
from ..errors import ConfigError, EmitterError, FieldValueError, InvalidInput, RetryableError
from ..events import Event
from ..interfaces import Alert, Component, Emitter, Health, Notifier, Query, QueryAdapter
from ..plugins import COMPONENT_KINDS, Plugins
from .events import EventFactory

try:  # the testing extra installs it; without it async fixtures work only in auto mode
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - pytest plugin import must not fail
    async_fixture = pytest.fixture  # type: ignore[assignment]  # the same decorator use

#: The fixtures' shapes, as the test methods receive them.
Config = dict[str, Any]
SiteFile = Callable[[Config], Path]
Build = Callable[..., Awaitable[Any]]  # await build(config, *, start=True) -> a component
Ids = Callable[[], Awaitable[list[str]]]  # stored_ids / delivered
Seed = Callable[[list[Event]], Awaitable[None]]

SECTIONS = {"emitter": "backends", "query_adapter": "sources", "notifier": "notifiers"}
#: Value types a config writes as a YAML scalar: a mapping in their place must be refused.
SCALARS = (str, int, float, bool, Path, Secret, ByteSize, Seconds)
#: Where a cancel lands: at once, after some event-loop turns, after some time.
CANCEL_POINTS = (0, 1, 3, 10, 0.005, 0.05)


def _scalar(hint: Any) -> bool:
    args = (
        typing.get_args(hint)
        if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    args = tuple(a for a in args if a is not NoneType)
    return bool(args) and all(a in SCALARS for a in args)


def _secret_strings(config: dict[str, Any]) -> list[str]:
    """The string values under secret-looking keys of a ``config:`` mapping, nested ones too."""
    words = ("password", "secret", "token", "key")
    found: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict):
            found += _secret_strings(value)
        elif any(w in key.lower() for w in words) and isinstance(value, str) and len(value) >= 4:
            found.append(value)
    return found


def _secrets(value: Any) -> list[str]:
    """Every string in a config mapping, for checking none leaks into an error message."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secrets(v)]
    if isinstance(value, list):
        return [s for v in value for s in _secrets(v)]
    return [value] if isinstance(value, str) else []


class _ComponentContract:
    """What every kind shares: building from a site config, health, settings errors."""

    #: The plugin object (usually the module the entry point names) and the type it registers.
    plugin: ClassVar[ModuleType | object]
    type_name: ClassVar[str]
    kind: ClassVar[str]
    #: Whether health() reports ok=False when the backend is down (a component whose health
    #: only checks local state sets this False; it must still return, not raise).
    health_sees_outage: ClassVar[bool] = True
    #: Seconds health() may take before the test fails (a host's /v1/healthz waits on it).
    health_timeout: ClassVar[float] = 15.0

    @pytest.fixture
    def config(self) -> dict[str, Any]:
        """A ``config:`` mapping for a working backend; override it."""
        pytest.fail(f"{type(self).__name__}: define a `config` fixture (a working config:)")

    @pytest.fixture
    def down_config(self) -> dict[str, Any]:
        """A ``config:`` mapping for the same backend when it is down (a closed port, a path
        that cannot be written); override it."""
        pytest.fail(
            f"{type(self).__name__}: define a `down_config` fixture (an unreachable backend)"
        )

    @pytest.fixture
    def secret_values(self, config: dict[str, Any]) -> list[str]:
        """Strings of ``config`` that must never appear in an error message (default: the
        values under keys that look like secrets, in nested sections too, such as
        ``api: {password: ...}``)."""
        return _secret_strings(config)

    @pytest.fixture
    def events(self) -> EventFactory:
        """The event factory the contract tests use (override for a backend's clock needs)."""
        return EventFactory(step=timedelta(milliseconds=1))

    @pytest.fixture
    def site_file(self, tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
        """Write a site config with one entry of this kind and type; returns its path."""

        def write(config: dict[str, Any]) -> Path:
            entry = {"name": "contract", "type": self.type_name, "config": config}
            path = tmp_path / f"contract-{self.kind}.yaml"
            path.write_text(yaml.safe_dump({"site_id": "fab1", SECTIONS[self.kind]: [entry]}))
            return path

        return write

    @pytest.fixture
    def registered(self) -> Plugins:
        plugins = Plugins()
        plugins.register(self.plugin, "contract-plugin")
        return plugins

    @async_fixture
    async def build(self, site_file: SiteFile, registered: Plugins) -> AsyncIterator[Build]:
        """``await build(config, start=True)``: a component built as a host builds it; closed
        after the test."""
        made: list[Component] = []

        async def make(config: dict[str, Any], *, start: bool = True) -> Any:
            loaded = load_config(site_file(config))
            section = SECTIONS[self.kind]
            ((index, entry),) = loaded.enabled(section)
            component = loaded.build_entry(section, index, entry, registered)
            made.append(component)
            if start:
                await component.start()
            return component

        yield make
        for component in made:
            with contextlib.suppress(Exception):
                await component.close()

    def build_errors(self, site_file: SiteFile, registered: Plugins, config: Config) -> ConfigError:
        path = site_file(config)
        try:
            loaded = load_config(path)
            ((index, entry),) = loaded.enabled(SECTIONS[self.kind])
            loaded.build_entry(SECTIONS[self.kind], index, entry, registered)
        except ConfigError as exc:
            return exc
        pytest.fail(f"config {config!r} was accepted; it should have been refused")

    async def bounded_health(self, component: Component) -> Health:
        async with asyncio.timeout(self.health_timeout):
            health = await component.health()
        assert isinstance(health, Health), f"health() returned {health!r}, not a Health"
        return health

    # -- the tests every kind runs ----------------------------------------------------------------

    def test_the_plugin_registers_the_type(self, registered: Plugins) -> None:
        provided = registered.types(self.kind).get(self.type_name)
        assert provided is not None, f"the plugin registers no {self.kind} {self.type_name!r}"
        assert issubclass(provided.cls, COMPONENT_KINDS[self.kind][1])
        info = next(i for i in registered.info() if i.name == "contract-plugin")
        assert info.error is None, info.error

    @pytest.mark.asyncio
    async def test_health_never_raises_even_when_the_backend_is_down(
        self, build: Build, down_config: Config
    ) -> None:
        component = await build(down_config, start=False)
        await self.bounded_health(component)  # before start
        try:
            async with asyncio.timeout(60):
                await component.start()
        except RetryableError:
            pass  # the documented way to say "the backend is down" at start
        await self.check_down(component)
        health = await self.bounded_health(component)
        if self.health_sees_outage:
            assert not health.ok, f"health() says ok while the backend is down: {health}"
            assert health.detail, "a failing health() says why in detail"
        await component.close()
        await self.bounded_health(component)  # after close

    async def check_down(self, component: Any) -> None:
        """What the kind's work call does while the backend is down (overridden per kind)."""

    @pytest.mark.asyncio
    async def test_health_is_ok_when_the_backend_is_up(self, build: Build, config: Config) -> None:
        health = await self.bounded_health(await build(config))
        assert health.ok, health

    def test_an_unknown_setting_is_named_with_its_line(
        self, site_file: SiteFile, registered: Plugins, config: Config, secret_values: list[str]
    ) -> None:
        error = self.build_errors(site_file, registered, {**config, "no_such_setting": 1})
        where = f"{SECTIONS[self.kind]}[0].config.no_such_setting"
        assert [p for p in error.problems if where in p.path and p.line], str(error)
        for secret in secret_values:
            assert secret not in str(error), "a secret value of the config is in the error"

    def test_a_missing_required_setting_is_named(
        self, site_file: SiteFile, registered: Plugins, config: Config
    ) -> None:
        settings_cls = registered.types(self.kind)[self.type_name].cls.Settings
        required = [f.name for f in attrs.fields(settings_cls) if f.default is attrs.NOTHING]
        for name in required:
            error = self.build_errors(
                site_file, registered, {k: v for k, v in config.items() if k != name}
            )
            where = f"{SECTIONS[self.kind]}[0].config.{name}"
            assert [p for p in error.problems if p.path == where], (name, str(error))

    def test_a_wrongly_typed_setting_is_named(
        self, site_file: SiteFile, registered: Plugins, config: Config, secret_values: list[str]
    ) -> None:
        settings_cls = registered.types(self.kind)[self.type_name].cls.Settings
        hints = typing.get_type_hints(settings_cls)
        scalars = [f.name for f in attrs.fields(settings_cls) if _scalar(hints[f.name])]
        for name in scalars:
            error = self.build_errors(
                site_file, registered, {**config, name: {"not": ["a", "scalar"]}}
            )
            where = f"{SECTIONS[self.kind]}[0].config.{name}"
            assert [p for p in error.problems if p.path == where], (name, str(error))
            for secret in secret_values:
                assert secret not in str(error), f"a secret value is in the error for {name}"


class EmitterContract(_ComponentContract):
    """The Emitter contract (see the module docstring); needs ``config``, ``down_config`` and
    ``stored_ids`` fixtures."""

    kind = "emitter"
    #: The backend stores an event_id once however often it is emitted.
    idempotent: ClassVar[bool] = False
    #: Events per batch in the tests.
    batch_size: ClassVar[int] = 5

    @pytest.fixture
    def stored_ids(self) -> Callable[[], Awaitable[list[str]]]:
        """``await stored_ids()``: the event_id of every event the backend holds, as strings,
        duplicates included (read straight from the backend, not through the emitter)."""
        pytest.fail(f"{type(self).__name__}: define a `stored_ids` fixture")

    async def check_down(self, component: Any) -> None:
        batch = self.batch(EventFactory())
        with pytest.raises(EmitterError) as raised:
            async with asyncio.timeout(120):
                await component.emit(batch)
        assert isinstance(raised.value, RetryableError), (
            f"a down backend's emit should raise RetryableError, got {raised.value!r}"
        )

    def batch(self, events: EventFactory) -> list[Event]:
        return events.many(self.batch_size)

    def assert_stored(self, stored: list[str], sent: list[Event]) -> None:
        counts = Counter(str(UUID(str(i))) for i in stored)  # any spelling of a UUID
        missing = [str(e.event_id) for e in sent if counts[str(e.event_id)] == 0]
        assert not missing, f"{len(missing)} of {len(sent)} events were lost"
        if self.idempotent:
            twice = {i: n for i, n in counts.items() if n > 1}
            assert not twice, f"an idempotent backend stored events more than once: {twice}"

    @pytest.mark.asyncio
    async def test_a_batch_is_stored(
        self, build: Build, config: Config, stored_ids: Ids, events: EventFactory
    ) -> None:
        emitter: Emitter = await build(config)
        batch = self.batch(events)
        await emitter.emit(batch)
        self.assert_stored(await stored_ids(), batch)

    @pytest.mark.asyncio
    async def test_a_retried_batch_loses_nothing_and_is_stored_once_if_idempotent(
        self, build: Build, config: Config, stored_ids: Ids, events: EventFactory
    ) -> None:
        emitter: Emitter = await build(config)
        first, second = self.batch(events), self.batch(events)
        await emitter.emit(first)
        await emitter.emit(first)  # the retry after a timeout that happened after the write
        await emitter.emit([*first[-2:], *second])  # an overlapping batch
        self.assert_stored(await stored_ids(), [*first, *second])

    @pytest.mark.asyncio
    async def test_a_cancelled_emit_does_not_corrupt_later_ones(
        self, build: Build, config: Config, stored_ids: Ids, events: EventFactory
    ) -> None:
        emitter: Emitter = await build(config)
        sent: list[Event] = []
        for point in CANCEL_POINTS:
            batch = self.batch(events)
            task = asyncio.create_task(emitter.emit(batch))
            if isinstance(point, int):
                for _ in range(point):
                    await asyncio.sleep(0)
            else:
                await asyncio.sleep(point)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await emitter.emit(batch)  # the router sends a cancelled batch again
            sent.extend(batch)
        last = self.batch(events)
        await emitter.emit(last)
        self.assert_stored(await stored_ids(), [*sent, *last])


class QueryAdapterContract(_ComponentContract):
    """The QueryAdapter contract; needs ``config``, ``down_config`` and ``seed`` fixtures.

    ``seed(events)`` stores events where the adapter reads them (usually with the plugin's own
    emitter); it is called twice with the same events, and the adapter must answer each once.
    """

    kind = "query_adapter"
    #: How many events the tests seed.
    seed_count: ClassVar[int] = 12

    @pytest.fixture
    def seed(self) -> Callable[[list[Event]], Awaitable[None]]:
        pytest.fail(f"{type(self).__name__}: define a `seed` fixture (stores events to read)")

    async def check_down(self, component: Any) -> None:
        with contextlib.suppress(Exception):  # any error is fine; it must not hang
            async with asyncio.timeout(120):
                await component.query(Query(limit=1))

    def seeded(self, events: EventFactory) -> list[Event]:
        sites, apps = ("fab1", "fab2"), ("etch", "litho")
        return [
            events(
                kind=("started", "progress", "finished", "failed")[i % 4],
                site_id=sites[i % 2],
                app=apps[(i // 2) % 2],
                entity_type="subjob" if i % 3 == 0 else "job",
                business_key=f"LOT-{i % 3}",
            )
            for i in range(self.seed_count)
        ]

    @pytest.mark.asyncio
    async def test_health_is_ok_when_the_backend_is_up(  # type: ignore[override]
        # pytest passes fixtures by name: a source needs seeded data to be up
        self,
        build: Build,
        config: Config,
        seed: Seed,
        events: EventFactory,
    ) -> None:
        await seed(self.seeded(events))  # "up" for a source: it holds data to read
        health = await self.bounded_health(await build(config))
        assert health.ok, health

    async def read_all(self, adapter: QueryAdapter, query: Query) -> list[Event]:
        found: list[Event] = []
        while True:
            async with asyncio.timeout(60):
                page = await adapter.query(query)
            assert len(page.events) <= query.limit
            found.extend(page.events)
            if page.next_cursor is None:
                return found
            query = attrs.evolve(query, cursor=page.next_cursor)

    @pytest.mark.asyncio
    async def test_pages_return_every_event_once_in_order(
        self, build: Build, config: Config, seed: Seed, events: EventFactory
    ) -> None:
        stored = self.seeded(events)
        await seed(stored)
        await seed(stored)  # at-least-once delivery stored them twice; reads deduplicate
        adapter: QueryAdapter = await build(config)
        found = await self.read_all(adapter, Query(limit=5))
        assert [str(e.event_id) for e in found] == [
            str(e.event_id) for e in sorted(stored, key=lambda e: e.sort_key)
        ]

    @pytest.mark.asyncio
    async def test_filters_agree_with_query_matches(
        self, build: Build, config: Config, seed: Seed, events: EventFactory
    ) -> None:
        stored = self.seeded(events)
        await seed(stored)
        adapter: QueryAdapter = await build(config)
        middle = sorted(stored, key=lambda e: e.sort_key)[len(stored) // 3].time
        queries = [
            Query(site_id="fab2"),
            Query(app="litho"),
            Query(status="failed"),
            Query(status="running"),
            Query(entity_type="subjob"),
            Query(business_key="LOT-1"),
            Query(start=middle),
            Query(end=middle),
            Query(site_id="fab1", app="etch", limit=2),
        ]
        for query in queries:
            found = await self.read_all(adapter, query)
            expected = sorted((e for e in stored if query.matches(e)), key=lambda e: e.sort_key)
            assert [e.event_id for e in found] == [e.event_id for e in expected], query

    @pytest.mark.asyncio
    async def test_a_malformed_cursor_names_the_cursor(
        self, build: Build, config: Config, seed: Seed, events: EventFactory
    ) -> None:
        await seed(self.seeded(events))
        adapter: QueryAdapter = await build(config)
        with pytest.raises((FieldValueError, InvalidInput)) as raised:
            await adapter.query(Query(cursor="not-a-cursor!"))
        assert "cursor" in str(raised.value)


class NotifierContract(_ComponentContract):
    """The Notifier contract; needs ``config``, ``down_config`` and ``delivered`` fixtures.

    ``delivered()`` returns the ``rule`` of every alert the backend received, in order.
    """

    kind = "notifier"

    @pytest.fixture
    def delivered(self) -> Callable[[], Awaitable[list[str]]]:
        pytest.fail(f"{type(self).__name__}: define a `delivered` fixture")

    @staticmethod
    def alert(rule: str) -> Alert:
        return Alert(rule=rule, severity="warning", summary=f"{rule} fired", site_id="fab1")

    async def check_down(self, component: Any) -> None:
        with pytest.raises(RetryableError):
            async with asyncio.timeout(120):
                await component.notify(self.alert("down"))

    @pytest.mark.asyncio
    async def test_an_alert_is_delivered(
        self, build: Build, config: Config, delivered: Ids
    ) -> None:
        notifier: Notifier = await build(config)
        await notifier.notify(self.alert("first"))
        assert "first" in await delivered()

    @pytest.mark.asyncio
    async def test_a_cancelled_notify_does_not_corrupt_later_ones(
        self, build: Build, config: Config, delivered: Ids
    ) -> None:
        notifier: Notifier = await build(config)
        for n, point in enumerate(CANCEL_POINTS):
            task = asyncio.create_task(notifier.notify(self.alert(f"cancelled-{n}")))
            await asyncio.sleep(point if isinstance(point, float) else 0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await notifier.notify(self.alert("after"))
        assert "after" in await delivered()
