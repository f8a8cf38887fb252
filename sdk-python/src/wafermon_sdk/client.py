"""Client: settings, sinks and a shipper; the default client behind the module functions.

A Client is cheap to make and starts nothing until its first event: the shipper thread is
started lazily. It is safe to share between threads, and between processes made with fork:
``os.register_at_fork`` gives every client in the child a fresh, empty queue and no thread
(the parent's thread does not exist there; the parent's queued events are the parent's to
send), and the child's first event starts its own shipper. Clients flush when closed, at
interpreter exit (atexit) and when a multiprocessing child finishes.

This module sits above ``monitored``: ``Client.monitored`` makes a ``Monitored`` bound to the
client, and a ``Monitored`` given no client asks ``monitored.default_client``, which this module
sets to ``get_client``. So neither imports the other both ways (tests/test_sdk_imports.py).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from wafermon import Event

from . import monitored as monitored_module
from . import shipper as shipper_module
from . import wire
from .config import Settings, direct_url_root, load_settings
from .monitored import Monitored
from .shipper import Shipper
from .sinks import DirectSink, SidecarSink, Sink
from .wire import SDK_VERSION

SIDECAR_SINK = "sidecar"

_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _direct_sink_name(backend: str) -> str:
    return f"direct.{backend}"


class Client:
    """Ships events to the sidecar and/or backends, per its settings.

    ``Client()`` reads WAFERMON_* variables (and the file WAFERMON_SDK_CONFIG names);
    ``Client("sdk.yaml")`` reads a YAML/TOML file first; keyword arguments override both,
    e.g. ``Client(mode="direct", site_config="site.yaml")`` or, without a site config,
    ``Client(mode="direct", direct_url="file:///var/lib/wafermon/events")``. A bad setting raises
    ``wafermon.ConfigError`` naming it. ``metadata`` is added to every job's metadata.
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | Settings | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        if isinstance(config, Settings):
            self.settings = config
        else:
            self.settings = load_settings(config, **overrides)
        self.metadata = wire.check_metadata(metadata)
        self.site_id = self.settings.site_id
        self._direct_names: list[str] = []
        if self.settings.uses_direct:
            self._check_direct()
        names = ([SIDECAR_SINK] if self.settings.uses_sidecar else []) + [
            _direct_sink_name(n) for n in self._direct_names
        ]
        self._sink_names = names
        self._closed = False
        self._shipper = Shipper(self.settings, self._make_sinks, names)
        _clients.add(self)
        if self._shipper.spool_dirs_on_disk():  # events an earlier process left: send them
            self._shipper.ensure_started()

    # -- building sinks ---------------------------------------------------------------------------

    def _direct_emitters(self) -> list[Any]:
        """The emitters of direct mode, built (not started): the ``filesystem`` backend at
        ``direct_url``, or every enabled backend of the site config. ConfigError if one cannot
        be built; the site config's ``site_id`` becomes the default one."""
        from wafermon import ConfigError, PluginError, Problem
        from wafermon.config import load_config, make_config_converter
        from wafermon.plugins import Plugins

        plugins = Plugins.discover()
        if self.settings.direct_url is not None:
            try:
                provided = plugins.require("emitter", "filesystem", needed_by="file:// direct mode")
            except PluginError as exc:
                raise ConfigError([Problem("WAFERMON_DIRECT_URL", str(exc))]) from None
            root = direct_url_root(self.settings.direct_url)
            converter = make_config_converter(root)
            settings = converter.structure({"root": str(root)}, provided.cls.Settings)
            return [provided.cls(name="filesystem", settings=settings)]
        assert self.settings.site_config is not None
        loaded = load_config(self.settings.site_config)
        try:
            emitters = loaded.build("backends", plugins)
        except PluginError as exc:
            raise ConfigError([Problem("WAFERMON_CONFIG", str(exc))]) from None
        if not emitters:
            raise ConfigError(
                [Problem("WAFERMON_CONFIG", f"{self.settings.site_config}: no enabled backend")]
            )
        if self.site_id is None:
            self.site_id = loaded.site.site_id
        return emitters

    def _check_direct(self) -> None:
        """Direct mode: every direct backend must build now, not at the first event."""
        self._direct_names = [e.name for e in self._direct_emitters()]

    def _make_sinks(self, loop: asyncio.AbstractEventLoop) -> list[Sink]:
        """Called in the shipper thread: connections and emitters belong to it."""
        sinks: list[Sink] = []
        if self.settings.uses_sidecar:
            sinks.append(SidecarSink(self.settings, SDK_VERSION))
        if self.settings.uses_direct:
            for emitter in self._direct_emitters():
                emitter.name = _direct_sink_name(emitter.name)
                sinks.append(DirectSink(emitter, loop, self.settings.timeout))
        return sinks

    # -- the shared SDK interface ------------------------------------------------------------------

    def emit_event(self, event: Event | Mapping[str, Any]) -> bool:
        """Queue one event: a ``wafermon.Event`` or a dict in wire form (checked off-thread).

        Returns False when the event was dropped because the queue is full (counted in stats).
        """
        if isinstance(event, Event):
            return self._enqueue(event)
        if isinstance(event, Mapping):
            return self._enqueue(dict(event))
        raise TypeError(f"expected a wafermon.Event or a mapping, got {type(event).__name__}")

    def emit_batch(self, events: Iterable[Event | Mapping[str, Any]]) -> int:
        """Queue several events; returns how many were queued (the rest were dropped)."""
        return sum(1 for event in events if self.emit_event(event))

    def monitored(self, **kwargs: Any) -> Monitored:
        """A ``Monitored`` context bound to this client: ``with client.monitored(...) as job:``."""
        return Monitored(client=self, **kwargs)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is delivered or safe in the disk spool.

        True when all of it was delivered and nothing waits in the spool; False after
        ``timeout`` (default ``flush_timeout``) or while a sink is unreachable.
        """
        return self._shipper.flush(self.settings.flush_timeout if timeout is None else timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """``flush`` for async code: waits in a worker thread, not in the event loop."""
        return await asyncio.to_thread(self.flush, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the shipper. Undelivered events stay in the spool for next time."""
        if self._closed:
            return True
        self._closed = True
        return self._shipper.close(self.settings.flush_timeout if timeout is None else timeout)

    def stats(self) -> dict[str, Any]:
        """queued, pending, sent, spooled, replayed, spool_lag, dropped, rejected, retries,
        last_error and per-sink figures."""
        return {"mode": self.settings.mode, **self._shipper.stats()}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} mode={self.settings.mode} sinks={self._sink_names}>"

    # -- internals ---------------------------------------------------------------------------------

    def enqueue_lifecycle(self, record: wire.Lifecycle) -> bool:
        """Queue a lifecycle event of a job this code tracks itself (``Monitored`` does): the
        wire JSON is made on the shipper thread. False when it was dropped (queue full)."""
        return self._enqueue(record)

    def _enqueue(self, record: wire.Lifecycle | Event | dict[str, Any]) -> bool:
        if self._closed:
            self._shipper._drop("the client is closed")
            return False
        return self._shipper.put(record)

    def _after_fork_in_child(self) -> None:
        self._shipper.abandon()
        self._shipper = Shipper(self.settings, self._make_sinks, self._sink_names)


class SidecarEmitter(Client):
    """A Client in sidecar mode, with the older SDK's constructor.

    ``SidecarEmitter(base_url='http://sidecar:17000', timeout=10.0, max_retries=5,
    enable_retries=True)``; other settings come from WAFERMON_* or keyword arguments.
    """

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        enable_retries: bool | None = None,
        *,
        token: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        given = {
            "sidecar_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "enable_retries": enable_retries,
            "token": token,
        }
        overrides.update({k: v for k, v in given.items() if v is not None})
        super().__init__(metadata=metadata, mode="sidecar", **overrides)


# -- the default client and module-level functions ----------------------------------------------

_default: Client | None = None
_default_lock = threading.Lock()


def initialize(
    config: str | os.PathLike[str] | Settings | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Client:
    """Make the default client (closing a previous one); bad settings raise ConfigError."""
    global _default
    client = Client(config, metadata=metadata, **overrides)
    with _default_lock:
        previous, _default = _default, client
    if previous is not None:
        previous.close()
    return client


def get_client() -> Client:
    """The default client; made from WAFERMON_* variables on first use if not initialized."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Client()
    return _default


def emit_event(event: Event | Mapping[str, Any]) -> bool:
    return get_client().emit_event(event)


def emit_batch(events: Iterable[Event | Mapping[str, Any]]) -> int:
    return get_client().emit_batch(events)


def flush(timeout: float | None = None) -> bool:
    return get_client().flush(timeout) if _default is not None else True


def close(timeout: float | None = None) -> bool:
    """Close the default client; the next use makes a new one."""
    global _default
    with _default_lock:
        client, _default = _default, None
    return client.close(timeout) if client is not None else True


def stats() -> dict[str, Any]:
    return get_client().stats()


def monitored(**kwargs: Any) -> Monitored:
    """A Monitored context on the default client."""
    return Monitored(**kwargs)


# -- process lifecycle ----------------------------------------------------------------------------


def _close_all_at_exit() -> None:
    for client in list(_clients):
        # At exit, one client's failure must not stop the others from flushing.
        with contextlib.suppress(Exception):
            client.close()


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for client in list(_clients):
        client._after_fork_in_child()


monitored_module.default_client = get_client
atexit.register(_close_all_at_exit)
shipper_module.at_process_end = _close_all_at_exit
os.register_at_fork(after_in_child=_after_fork_in_child)
