"""Monitored: a job or subjob as a context manager, a decorator, or an async context.

It emits ``started`` on entry, ``progress`` on ``tick``, and ``finished`` or ``failed`` on exit
(``failed`` carries the exception's type, message and traceback; the exception propagates).
What the caller's thread does per event is small and bounded: read the clock, build a record,
append it to the client's queue. Encoding, ids and network are the shipper thread's work.

Resource figures, taken on entry and exit with one ``getrusage`` call each (about 1 µs):

- ``cpu_user_s`` / ``cpu_system_s``: CPU time of the *thread* that runs the job
  (``RUSAGE_THREAD`` on Linux), so 32 threads running 32 jobs each report their own work, not
  the whole process's. Async jobs share their thread with every other task of the event loop,
  so they report the *process* (``RUSAGE_SELF``); ``cpu="process"`` or ``cpu="thread"``
  chooses explicitly. Where RUSAGE_THREAD does not exist (macOS) process time is used.
  CPU of child processes is not included.
- ``mem_max_mb``: ``ru_maxrss``, the process's peak resident set size so far, in MiB. It is a
  high-water mark for the whole process, not the job's own allocation: tracemalloc would give
  that, but it slows every allocation of the program several times over.
- ``duration_s``: ``time.perf_counter`` between entry and exit (monotonic).

This module does not import ``client`` (which imports it for ``Client.monitored``): what a
Monitored needs of a client is the ``LifecycleQueue`` protocol, and the default client comes
from ``default_client``, which ``wafermon_sdk.client`` sets to its ``get_client``.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import resource
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar
from uuid import UUID

import attrs

from wafermon import App, Entity
from wafermon.errors import FieldValueError
from wafermon.events import SITE_ID_PATTERN

from . import wire
from .wire import SDK_VERSION

F = TypeVar("F", bound=Callable[..., Any])

RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
_MAXRSS_TO_MB = 1 / 2**20 if sys.platform == "darwin" else 1 / 1024  # bytes there, KiB here
_getrusage = resource.getrusage
_perf_counter = time.perf_counter
_time_ns = time.time_ns

#: Running jobs of this process by entity id (weakly held: a job dropped unfinished does not
#: linger), so a subjob given only its parent's id still finds the parent's business key.
_running: weakref.WeakValueDictionary[str, Monitored] = weakref.WeakValueDictionary()
_current: contextvars.ContextVar[Monitored | None] = contextvars.ContextVar(
    "wafermon_sdk_current", default=None
)


class LifecycleQueue(Protocol):
    """What a Monitored needs of its client (``wafermon_sdk.Client`` is one)."""

    @property
    def site_id(self) -> str | None: ...

    @property
    def metadata(self) -> Mapping[str, Any]: ...

    def enqueue_lifecycle(self, record: wire.Lifecycle) -> bool: ...


def _no_default_client() -> LifecycleQueue:
    raise RuntimeError("no default client: import wafermon_sdk (its client module sets one)")


#: The client of a Monitored made without one; ``wafermon_sdk.client`` sets it to ``get_client``
#: when imported (importing ``wafermon_sdk`` does), so this module needs no import of it.
default_client: Callable[[], LifecycleQueue] = _no_default_client


def current() -> Monitored | None:
    """The innermost active Monitored of this thread or task, if any."""
    return _current.get()


def _uuid_or_none(value: Any) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    return UUID(str(value))


@attrs.frozen
class AppRef:
    """The application a job belongs to: ``AppRef(app_id=uuid4(), name=..., version=...)``."""

    name: str
    version: str | None = None
    app_id: UUID | None = attrs.field(default=None, converter=_uuid_or_none)
    _app: App = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Validated once, here: a bad name or version fails where the AppRef is made.
        try:
            app = App(name=self.name, version=self.version, app_id=self.app_id)
        except FieldValueError as exc:
            raise ValueError(f"app.{exc}") from None
        object.__setattr__(self, "_app", app)

    def to_app(self) -> App:
        return self._app


def _default_app() -> AppRef:
    script = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else ""
    return AppRef(name=(script or "python")[:128])


class Monitored:
    """A monitored job or subjob. Use it as ``with``, ``async with`` or as a decorator.

    ``emitter`` (or ``client``) is the Client that ships the events; by default the module's
    default client. ``site_id`` defaults to the client's. A subjob without ``parent_id`` takes
    the innermost enclosing Monitored as its parent.
    """

    def __init__(
        self,
        site_id: str | None = None,
        app: AppRef | App | None = None,
        entity_type: str = "job",
        business_key: str | None = None,
        sub_key: str | None = None,
        parent_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        emitter: LifecycleQueue | None = None,
        *,
        client: LifecycleQueue | None = None,
        entity_id: str | None = None,
        cpu: str | None = None,
    ) -> None:
        if entity_type not in ("job", "subjob"):
            raise ValueError(f"entity_type: must be 'job' or 'subjob', got {entity_type!r}")
        if cpu not in (None, "thread", "process"):
            raise ValueError(f"cpu: must be 'thread' or 'process', got {cpu!r}")
        app = app if app is not None else _default_app()
        self.app: App = app.to_app() if isinstance(app, AppRef) else app
        if not isinstance(self.app, App):
            raise TypeError(f"app: expected an AppRef, got {type(app).__name__}")
        self.site_id = site_id
        self.entity_type = entity_type
        self.business_key = business_key
        self.sub_key = sub_key
        self.parent_id = parent_id
        self.metadata = wire.check_metadata(metadata)
        self.client = client or emitter
        self.entity_id = entity_id or wire.new_id()
        self.cpu = cpu
        # Checked now, so a mistake shows where the Monitored is made; a subjob whose parent
        # comes from the enclosing job at entry is checked with a stand-in and again then.
        self._checked: Entity | None = self._entity(
            parent_id or (self.entity_id if entity_type == "subjob" else None)
        )
        if entity_type == "subjob" and parent_id is None:
            self._checked = None
        self._active = False
        self._client: LifecycleQueue | None = None
        self._head: dict[str, Any] = {}
        self._meta: dict[str, Any] = {}
        self._t0 = 0.0
        self._ru0: Any = None
        self._who = RUSAGE_THREAD
        self._token: contextvars.Token | None = None
        self.status: str | None = None  # "running", then "finished" or "failed"

    def _entity(self, parent_id: str | None) -> Entity:
        try:
            return Entity(
                type=self.entity_type,
                id=self.entity_id,
                parent_id=parent_id,
                business_key=self.business_key,
                sub_key=self.sub_key,
            )
        except FieldValueError as exc:
            raise ValueError(str(exc)) from None

    def _inherit_business_key(self) -> None:
        """A subjob without its own business key takes its parent's (the lot's), so a query by
        business key finds the lot's wafers too: the parent is any job of this process that
        is running with that id, as an enclosing block or one given by its id."""
        if self.entity_type != "subjob" or self.business_key is not None:
            return
        parent = _running.get(self.parent_id) if self.parent_id is not None else None
        if parent is not None and parent.business_key is not None:
            self.business_key = parent.business_key
            self._checked = None  # rebuilt with the key below

    def _copy(self) -> Monitored:
        """A fresh job with the same settings (each decorated call is its own job)."""
        return Monitored(
            self.site_id,
            self.app,
            self.entity_type,
            self.business_key,
            self.sub_key,
            self.parent_id,
            self.metadata,
            client=self.client,
            cpu=self.cpu,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def _start(self, *, asynchronous: bool) -> Monitored:
        if self._active or self.status is not None:
            raise RuntimeError("a Monitored runs once; make a new one (a decorator does)")
        client = self.client or default_client()
        site_id = self.site_id or client.site_id
        if site_id is None:
            raise ValueError("site_id: not given and the client has none (set WAFERMON_SITE_ID)")
        parent_id = self.parent_id
        if self.entity_type == "subjob" and parent_id is None:
            enclosing = _current.get()
            if enclosing is None:
                raise ValueError("parent_id: a subjob needs one, and no Monitored encloses it")
            parent_id = enclosing.entity_id
        self.parent_id = parent_id
        self._inherit_business_key()
        if not SITE_ID_PATTERN.fullmatch(str(site_id)):
            raise ValueError(f"site_id: not a valid site id: {site_id!r}")
        entity = self._checked if self._checked is not None else self._entity(parent_id)
        self._head = wire.head(site_id, self.app, entity, SDK_VERSION)
        self._client = client
        self._meta = {**client.metadata, **self.metadata} if client.metadata else self.metadata
        scope = self.cpu or ("process" if asynchronous else "thread")
        self._who = resource.RUSAGE_SELF if scope == "process" else RUSAGE_THREAD
        self._active, self.status = True, "running"
        self._token = _current.set(self)
        _running[self.entity_id] = self
        client.enqueue_lifecycle(
            wire.Lifecycle(self._head, "started", _time_ns(), None, self._meta)
        )
        self._ru0 = _getrusage(self._who)
        self._t0 = _perf_counter()
        return self

    def tick(
        self, extra_meta: Mapping[str, Any] | None = None, *, progress: float | None = None
    ) -> None:
        """Emit ``progress``. ``extra_meta['progress']`` (0..1) goes to metrics.progress, the rest
        of ``extra_meta`` is merged into the job's metadata (carried by every later event)."""
        if not self._active:
            raise RuntimeError("tick() outside the monitored block")
        metrics: dict[str, Any] = {"duration_s": _perf_counter() - self._t0}
        if extra_meta:
            if "progress" in extra_meta:
                extra_meta = dict(extra_meta)
                value = extra_meta.pop("progress")
                if progress is None and _is_fraction(value):
                    progress = value
                elif progress is None:
                    extra_meta["progress"] = value  # not a number: kept as metadata
            if extra_meta:
                self._meta = {**self._meta, **extra_meta}
        if progress is not None:
            metrics["progress"] = min(1.0, max(0.0, float(progress)))
        self._client.enqueue_lifecycle(  # type: ignore[union-attr]
            wire.Lifecycle(self._head, "progress", _time_ns(), metrics, self._meta)
        )

    def _finish(self, exc: BaseException | None) -> None:
        if not self._active:
            return
        duration = _perf_counter() - self._t0
        usage = _getrusage(self._who)
        ru0 = self._ru0
        metrics = {
            "duration_s": duration,
            "cpu_user_s": max(0.0, usage.ru_utime - ru0.ru_utime),
            "cpu_system_s": max(0.0, usage.ru_stime - ru0.ru_stime),
            "mem_max_mb": usage.ru_maxrss * _MAXRSS_TO_MB,
        }
        error = None
        if exc is not None:
            error = wire.error_info(exc, "".join(traceback.format_exception(exc)))
        self._active = False
        _running.pop(self.entity_id, None)
        self.status = "failed" if exc is not None else "finished"
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # exited in another context than it was entered in
                _current.set(None)
            self._token = None
        kind = self.status
        self._client.enqueue_lifecycle(  # type: ignore[union-attr]
            wire.Lifecycle(self._head, kind, _time_ns(), metrics, self._meta, error)
        )

    @property
    def duration(self) -> float:
        """Seconds since the job started (while it runs)."""
        return _perf_counter() - self._t0 if self._active else 0.0

    # -- protocols --------------------------------------------------------------------------------

    def __enter__(self) -> Monitored:
        return self._start(asynchronous=False)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self._finish(exc)
        return False

    async def __aenter__(self) -> Monitored:
        return self._start(asynchronous=True)

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self._finish(exc)
        return False

    def __call__(self, func: F) -> F:
        """Decorate a function or coroutine function: each call is a new monitored job."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._copy():
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._copy():
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"<Monitored {self.entity_type} {self.entity_id} app={self.app.name!r} "
            f"status={self.status}>"
        )


def _is_fraction(value: Any) -> bool:
    return type(value) in (int, float) and value == value and abs(value) != float("inf")
