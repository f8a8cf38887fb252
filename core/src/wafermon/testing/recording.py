"""In-memory components for tests: real Emitter/QueryAdapter/Notifier subclasses, no mocks.

``RecordingEmitter`` keeps what it takes in memory, by backend name, so a test can read what a
component the core built from a site config received (``RecordingEmitter.got["a"]``). Switches
make it fail the way a real backend does: ``down`` (RetryableError, an outage), ``refuse``
(PermanentError naming exactly the refused events, the rest taken), ``broken_start`` (start()
raises), ``fail_times`` (the first N calls fail). ``MemoryQueryAdapter`` answers queries from
what the recording emitters took, and ``RecordingNotifier`` keeps alerts. ``RecordingPlugin``
registers all three under the type name ``recording``. State is class-level; the pytest
plugin clears it before and after each test (``RecordingEmitter.reset()``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

import attrs

from .. import encode_cursor, hookimpl
from ..errors import EmitterError, PermanentError, RetryableError
from ..events import Event
from ..hookspecs import RegisterEmitter, RegisterNotifier, RegisterQueryAdapter
from ..interfaces import Alert, Emitter, Health, Notifier, Query, QueryAdapter, QueryResult


@attrs.frozen
class RecordingSettings:
    """``delay``: seconds each emit takes; ``idempotent``: an event_id taken before is not
    stored again (as a backend that deduplicates would); ``down``: the backend is unreachable
    (start, emit raise RetryableError, health says so)."""

    delay: float = 0.0
    idempotent: bool = False
    down: bool = False


class RecordingEmitter(Emitter):
    """Keeps every event it takes in ``events`` and in ``RecordingEmitter.got[name]`` (where
    a test finds what a component built from a site config took); switches make it fail.

    - ``RecordingEmitter.down``: backend names whose emit raises RetryableError;
    - ``RecordingEmitter.refuse``: entity ids every recording backend rejects with a
      PermanentError naming exactly those events (the rest of the batch is taken);
    - ``RecordingEmitter.broken_start``: backend names whose start() raises RetryableError;
    - ``fail_times`` / ``error`` (constructor): the first ``fail_times`` calls raise ``error``.
    """

    Settings = RecordingSettings
    got: ClassVar[dict[str, list[Event]]] = defaultdict(list)
    down: ClassVar[set[str]] = set()
    refuse: ClassVar[set[str]] = set()
    broken_start: ClassVar[set[str]] = set()

    def __init__(
        self,
        name: str,
        settings: RecordingSettings | None = None,
        *,
        fail_times: int = 0,
        error: type[EmitterError] = RetryableError,
    ) -> None:
        super().__init__(name, settings if settings is not None else RecordingSettings())
        self.calls = 0
        self.fail_times = fail_times
        self.error = error
        #: What this instance took, in order (``got[name]``: every instance of that name).
        self.events: list[Event] = []

    async def start(self) -> None:
        if self.name in self.broken_start or self.settings.down:
            raise RetryableError(f"{self.name} cannot reach its server")

    async def health(self) -> Health:
        if self.settings.down:
            return Health(ok=False, detail=f"{self.name} cannot reach its server")
        return Health(ok=True)

    async def emit(self, batch: Sequence[Event]) -> None:
        self.calls += 1
        if self.settings.delay:
            await asyncio.sleep(self.settings.delay)
        if self.calls <= self.fail_times:
            raise self.error(f"{self.name} is down (call {self.calls})")
        if self.name in self.down or self.settings.down:
            raise RetryableError(f"{self.name} is down")
        taken = self.got[self.name]
        seen = {e.event_id for e in taken} if self.settings.idempotent else set()
        bad = [e.event_id for e in batch if e.entity.id in self.refuse]
        for event in batch:
            if event.event_id in bad or event.event_id in seen:
                continue
            if self.settings.idempotent:
                seen.add(event.event_id)
            taken.append(event)
            self.events.append(event)
        if bad:
            raise PermanentError(f"{self.name} refuses entity {sorted(self.refuse)}", bad)

    def stats(self) -> dict[str, float]:
        return {"events_taken": float(len(self.got[self.name]))}

    @classmethod
    def reset(cls) -> None:
        """Forget every recording and switch; the pytest plugin does this around each test."""
        cls.got.clear()
        cls.down.clear()
        cls.refuse.clear()
        cls.broken_start.clear()
        RecordingNotifier.alerts.clear()


@attrs.frozen
class MemoryAdapterSettings:
    """``backend``: the recording backend to read (default: the adapter's own name)."""

    backend: str | None = None


class MemoryQueryAdapter(QueryAdapter):
    """Answers queries from what a ``RecordingEmitter`` took: filters, order, keyset cursors."""

    Settings = MemoryAdapterSettings

    def __init__(self, name: str, settings: MemoryAdapterSettings | None = None) -> None:
        super().__init__(name, settings if settings is not None else MemoryAdapterSettings())

    async def query(self, query: Query) -> QueryResult:
        after = query.after_cursor()
        unique = {e.event_id: e for e in RecordingEmitter.got[self.settings.backend or self.name]}
        found = sorted(
            (
                e
                for e in unique.values()
                if query.matches(e) and (after is None or e.sort_key > after)
            ),
            key=lambda e: e.sort_key,
        )
        page = found[: query.limit]
        more = len(found) > query.limit
        return QueryResult(page, encode_cursor(page[-1]) if more else None)


@attrs.frozen
class NotifierSettings:
    """``down``: the receiver is unreachable (notify raises RetryableError)."""

    down: bool = False


class RecordingNotifier(Notifier):
    """Keeps every alert in ``RecordingNotifier.alerts[name]``."""

    Settings = NotifierSettings
    alerts: ClassVar[dict[str, list[Alert]]] = defaultdict(list)

    def __init__(self, name: str, settings: NotifierSettings | None = None) -> None:
        super().__init__(name, settings if settings is not None else NotifierSettings())

    async def notify(self, alert: Alert) -> None:
        if self.settings.down:
            raise RetryableError(f"{self.name} cannot reach its receiver")
        self.alerts[self.name].append(alert)

    async def health(self) -> Health:
        down = self.settings.down
        return Health(ok=not down, detail=f"{self.name} cannot reach its receiver" if down else "")


class RecordingPlugin:
    """A plugin object registering the type ``recording`` as emitter, query adapter and
    notifier: ``plugins.register(RecordingPlugin(), "recording")``."""

    def __init__(self, type_name: str = "recording") -> None:
        self.type_name = type_name

    @hookimpl
    def register_emitters(self, register: RegisterEmitter) -> None:
        register(self.type_name, RecordingEmitter)

    @hookimpl
    def register_query_adapters(self, register: RegisterQueryAdapter) -> None:
        register(self.type_name, MemoryQueryAdapter)

    @hookimpl
    def register_notifiers(self, register: RegisterNotifier) -> None:
        register(self.type_name, RecordingNotifier)
