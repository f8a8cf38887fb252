"""The hooks a wafermon plugin can implement. Each docstring is the plugin author's reference.

A plugin is a module with functions decorated ``@wafermon.hookimpl`` whose names match these
specs; it is found through an entry point in group ``wafermon``. Implement only the hooks you
need, with only the arguments you need (pluggy passes arguments by name).

The arguments are typed: annotate an implementation with the same types (the ``Register*``
protocols below for the registration hooks) and a type checker finds a wrong class or a
misspelt argument before the plugin runs::

    from wafermon.hookspecs import RegisterEmitter

    @hookimpl
    def register_emitters(register: RegisterEmitter) -> None:
        register("csv", "my_plugin.emitter:CsvEmitter")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import click
import pluggy

from .interfaces import Emitter, Notifier, QueryAdapter, StreamConsumer

if TYPE_CHECKING:
    from .config import LoadedConfig
    from .errors import Problem
    from .events import Event
    from .plugins import Plugins

hookspec = pluggy.HookspecMarker("wafermon")


class RegisterEmitter(Protocol):
    """``register(type_name, cls)`` of ``register_emitters``: an Emitter subclass, or its
    ``"module:Class"`` reference (imported on first use, so a heavy library loads only when
    a site uses the type)."""

    def __call__(self, type_name: str, cls: type[Emitter] | str) -> None: ...


class RegisterQueryAdapter(Protocol):
    """``register(type_name, cls)`` of ``register_query_adapters``."""

    def __call__(self, type_name: str, cls: type[QueryAdapter] | str) -> None: ...


class RegisterNotifier(Protocol):
    """``register(type_name, cls)`` of ``register_notifiers``."""

    def __call__(self, type_name: str, cls: type[Notifier] | str) -> None: ...


class RegisterConsumer(Protocol):
    """``register(type_name, cls)`` of ``register_consumers``."""

    def __call__(self, type_name: str, cls: type[StreamConsumer] | str) -> None: ...


@hookspec
def register_emitters(register: RegisterEmitter) -> None:
    """Register emitter backend types: ``register(type_name, EmitterSubclass)``.

    ``type_name`` is what a site config writes in ``backends[].type``. The core owns naming:
    two plugins registering one type name is an error that names both.
    """


@hookspec
def register_query_adapters(register: RegisterQueryAdapter) -> None:
    """Register query adapter types: ``register(type_name, QueryAdapterSubclass)``.

    ``type_name`` is what a site config writes in ``sources[].type``. A backend that can also be
    read back (filesystem, sql, s3) usually registers the same type name here and as emitter.
    """


@hookspec
def register_notifiers(register: RegisterNotifier) -> None:
    """Register alert notifier types: ``register(type_name, NotifierSubclass)``."""


@hookspec
def register_consumers(register: RegisterConsumer) -> None:
    """Register stream consumer types: ``register(type_name, StreamConsumerSubclass)``.

    ``type_name`` is what a gateway config writes in ``gateway.streams[].type``; use the same
    name as the plugin's emitter (``kafka``, ``nats``), so one type names both ends of a stream.
    """


@hookspec
def transform_events(events: list[Event], host: str, site_id: str) -> list[Event] | None:
    """Transform or enrich a batch of events before it is stored or forwarded.

    Return a new list of events (frozen attrs instances: use ``attrs.evolve``), or None to leave
    the batch unchanged. Implementations run one after another, each seeing the previous one's
    output. ``host`` names the process ("sidecar", "gateway", "cli") and ``site_id`` its site.
    Dropping an event here is deliberate filtering; raising aborts the batch.
    """


@hookspec
def check_config(config: LoadedConfig, plugins: Plugins) -> list[Problem | str] | None:
    """Check the sections of a loaded site config (``wafermon.config.LoadedConfig``) you own.

    Return the problems found (``Problem``s with key path and line, or strings), or None.
    ``wafermon config check`` calls this, so a host checks its section with the very code its
    own ``--check`` runs (the hosts package checks ``sidecar:`` and ``gateway:`` here).
    """


@hookspec
def register_routes(host: str) -> list[Any] | None:
    """Return extra Starlette routes (``Route``, ``Mount``) for the named host, or None.

    ``host`` is "sidecar", "gateway" or "central". Routes are added under the host's own
    authentication; use a path under ``/v1/x/<plugin>/`` so plugins cannot collide.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``wafermon`` CLI; ``cli`` is its click group.

    The hosts use this to add ``wafermon gateway``, ``wafermon sidecar`` and so on.
    """
