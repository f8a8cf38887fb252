"""The hooks a wafermon plugin can implement. Each docstring is the plugin author's reference.

A plugin is a module with functions decorated ``@wafermon.hookimpl`` whose names match these
specs; it is found through an entry point in group ``wafermon``. Implement only the hooks you
need, with only the arguments you need (pluggy passes arguments by name).
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("wafermon")


@hookspec
def register_emitters(register: Any) -> None:
    """Register emitter backend types: ``register(type_name, EmitterSubclass)``.

    ``type_name`` is what a site config writes in ``backends[].type``. The core owns naming:
    two plugins registering one type name is an error that names both.
    """


@hookspec
def register_query_adapters(register: Any) -> None:
    """Register query adapter types: ``register(type_name, QueryAdapterSubclass)``.

    ``type_name`` is what a site config writes in ``sources[].type``. A backend that can also be
    read back (filesystem, sql, s3) usually registers the same type name here and as emitter.
    """


@hookspec
def register_notifiers(register: Any) -> None:
    """Register alert notifier types: ``register(type_name, NotifierSubclass)``."""


@hookspec
def register_consumers(register: Any) -> None:
    """Register stream consumer types: ``register(type_name, StreamConsumerSubclass)``.

    ``type_name`` is what a gateway config writes in ``gateway.streams[].type``; use the same
    name as the plugin's emitter (``kafka``, ``nats``), so one type names both ends of a stream.
    """


@hookspec
def transform_events(events: list[Any], host: str, site_id: str) -> list[Any] | None:
    """Transform or enrich a batch of events before it is stored or forwarded.

    Return a new list of events (frozen attrs instances: use ``attrs.evolve``), or None to leave
    the batch unchanged. Implementations run one after another, each seeing the previous one's
    output. ``host`` names the process ("sidecar", "gateway", "cli") and ``site_id`` its site.
    Dropping an event here is deliberate filtering; raising aborts the batch.
    """


@hookspec
def check_config(config: Any, plugins: Any) -> list[Any] | None:
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
def register_commands(cli: Any) -> None:
    """Add commands to the ``wafermon`` CLI; ``cli`` is its click group.

    The hosts use this to add ``wafermon gateway``, ``wafermon sidecar`` and so on.
    """
