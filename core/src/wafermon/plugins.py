"""The one place plugins are found, loaded, checked and asked what they provide.

Loading follows one rule: a plugin the site config needs must work, or the host stops with the
plugin's name and the reason; a broken plugin nobody asked for is reported and skipped.
Tests build a ``Plugins`` without entry points and register the plugins they want by name.

Environment: ``WAFERMON_LOAD_PLUGINS=a,b`` loads only those entry points (empty: none);
``WAFERMON_TRACE_HOOKS=1`` prints every hook call to stderr.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import attrs
import pluggy
from pluggy import HookCaller, HookImpl

from . import hookspecs
from .errors import PluginError, did_you_mean
from .events import Event
from .interfaces import Component, Emitter, Notifier, QueryAdapter, StreamConsumer

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "wafermon"

#: kind of component -> (registration hook, base class every registered class must subclass)
COMPONENT_KINDS: dict[str, tuple[str, type[Component]]] = {
    "emitter": ("register_emitters", Emitter),
    "query_adapter": ("register_query_adapters", QueryAdapter),
    "notifier": ("register_notifiers", Notifier),
    "consumer": ("register_consumers", StreamConsumer),
}


@attrs.define
class Provided:
    """A component type and the plugin that registered it.

    ``ref`` is the class, or ``"module:Class"`` imported on first use of ``cls``: a plugin whose
    module pulls in a heavy library (SQLAlchemy, a cloud SDK) registers by name, so commands that
    never build its components (``wafermon --help``, ``wafermon schema``) do not pay for it.
    """

    kind: str
    type_name: str
    ref: type[Component] | str
    plugin: str

    @property
    def cls(self) -> type[Component]:
        """The class; imports a ``"module:Class"`` reference (PluginError if that fails)."""
        if isinstance(self.ref, str):
            self.ref = _import_class(self.ref, self.kind, self.plugin)
        return self.ref


@attrs.define
class PluginInfo:
    """What ``wafermon plugins`` shows for one plugin."""

    name: str
    version: str | None
    distribution: str | None
    hooks: list[str] = attrs.Factory(list)
    provides: list[str] = attrs.Factory(list)
    warnings: list[str] = attrs.Factory(list)
    error: str | None = None


@attrs.frozen
class Transformed:
    """A batch after the transform_events plugins."""

    events: list[Event]
    lines: list[bytes | None]  # each event's JSON as received; None where a plugin replaced it
    dropped: list[int]  # positions in the input of the events a plugin dropped


class Plugins:
    """A pluggy PluginManager plus what its plugins registered, by kind and type name."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}
        self._provided: dict[str, dict[str, Provided]] | None = None
        self._clashes: dict[tuple[str, str], str] = {}
        self._callers: dict[tuple[str, str], HookCaller] = {}
        self._impls: dict[str, list[HookImpl]] = {}  # asked on every ingest request
        self._tracing = os.environ.get("WAFERMON_TRACE_HOOKS", "") not in ("", "0", "false")
        if self._tracing:
            self.pm.trace.root.setwriter(lambda text: sys.stderr.write(f"wafermon hook: {text}"))
            self.pm.enable_tracing()

    @classmethod
    def discover(cls) -> Plugins:
        """Load every installed plugin (or those WAFERMON_LOAD_PLUGINS names)."""
        plugins = cls()
        wanted = os.environ.get("WAFERMON_LOAD_PLUGINS")
        only = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if only is not None and ep.name not in only:
                continue
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import failure marks the plugin broken
                plugins._broken(ep.name, version, dist, _reason(exc))
                continue
            plugins.register(module, ep.name, version=version, distribution=dist)
        return plugins

    def register(
        self,
        module: ModuleType | object,
        name: str,
        *,
        version: str | None = None,
        distribution: str | None = None,
    ) -> None:
        """Register a plugin object under ``name``; misspelt hook names mark it broken."""
        try:
            self.pm.register(module, name=name)
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors and name clashes
            if self.pm.is_registered(module):
                self.pm.unregister(module)
            self._broken(name, version, distribution, _reason(exc))
            return
        hooks = sorted(c.name for c in self.pm.get_hookcallers(module) or [])
        self._info[name] = PluginInfo(name, version, distribution, hooks)
        self._provided = None
        self._callers, self._impls = {}, {}

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._info.pop(name, None)
        self._provided = None
        self._callers, self._impls = {}, {}

    def _broken(self, name: str, version: str | None, dist: str | None, reason: str) -> None:
        log.warning("plugin %r failed to load and is skipped: %s", name, reason)
        self._info[name] = PluginInfo(name, version, dist, error=reason)

    # -- what plugins provide -------------------------------------------------------------------

    def _collect(self) -> dict[str, dict[str, Provided]]:
        if self._provided is not None:
            return self._provided
        provided: dict[str, dict[str, Provided]] = {kind: {} for kind in COMPONENT_KINDS}
        self._clashes = {}
        for info in self._info.values():
            info.provides, info.warnings = [], []
        for kind, (hook_name, base) in COMPONENT_KINDS.items():
            for impl in self._implementations(hook_name):
                registered: list[Provided] = []

                def register(
                    type_name: str,
                    cls: type | str,
                    _kind: str = kind,
                    _base: type[Component] = base,
                    _plugin: str = impl.plugin_name,
                    _out: list[Provided] = registered,
                ) -> None:
                    if isinstance(cls, str):
                        if not _is_class_ref(cls):
                            raise PluginError(f"{cls!r} is not a 'module:Class' reference")
                    elif not (isinstance(cls, type) and issubclass(cls, _base)):
                        raise PluginError(f"{cls!r} is not a subclass of {_base.__name__}")
                    _out.append(Provided(_kind, type_name, cls, _plugin))

                try:
                    self._call_one(hook_name, impl.plugin_name, register=register)
                except Exception as exc:  # noqa: BLE001 - a plugin's own bug marks it broken
                    self._info[impl.plugin_name].error = f"{hook_name} failed: {_reason(exc)}"
                    continue
                for item in registered:
                    self._info[item.plugin].provides.append(f"{kind}:{item.type_name}")
                    clash = provided[kind].get(item.type_name)
                    if clash is None and (kind, item.type_name) not in self._clashes:
                        provided[kind][item.type_name] = item
                        continue
                    # Neither plugin gets the type: which one a site would run must not depend
                    # on installation order. Only a site that uses the type is stopped.
                    first = clash.plugin if clash else self._clashes[(kind, item.type_name)]
                    provided[kind].pop(item.type_name, None)
                    message = (
                        f"{kind} type {item.type_name!r} is registered by both plugin "
                        f"{first!r} and plugin {item.plugin!r}; uninstall one of them"
                    )
                    self._clashes[(kind, item.type_name)] = message
                    for plugin in (first, item.plugin):
                        self._info[plugin].warnings.append(message)
        self._provided = provided
        return provided

    def types(self, kind: str) -> dict[str, Provided]:
        """Type name -> Provided for one kind (emitter, query_adapter, notifier, consumer)."""
        return dict(self._collect()[kind])

    def require(self, kind: str, type_name: str, *, needed_by: str) -> Provided:
        """The class for a type the config names, or a PluginError saying why it is missing."""
        found = self._collect()[kind].get(type_name)
        if found is not None:
            return found
        if (kind, type_name) in self._clashes:
            raise PluginError(f"{needed_by}: {self._clashes[(kind, type_name)]}")
        label = kind.replace("_", " ")
        message = f"{needed_by}: no installed plugin provides {label} type {type_name!r}"
        broken = {n: i for n, i in self._info.items() if i.error}
        if type_name in broken:
            message += f"; plugin {type_name!r} failed to load: {broken[type_name].error}"
        elif broken:
            message += "; plugins that failed to load: " + ", ".join(
                f"{n} ({i.error})" for n, i in sorted(broken.items())
            )
        else:
            known = ", ".join(sorted(self._collect()[kind])) or "none"
            hint = did_you_mean(type_name, self._collect()[kind])
            message += f" (installed {label} types: {known})" + (
                hint or f"; is wafermon-backend-{type_name} installed?"
            )
        raise PluginError(message)

    def info(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or broken, with what it provides."""
        self._collect()
        return sorted(self._info.values(), key=lambda i: i.name)

    # -- running hooks --------------------------------------------------------------------------

    @property
    def transforms_events(self) -> bool:
        """Whether any plugin implements transform_events (else ingest needs no Event objects)."""
        return bool(self._implementations("transform_events"))

    def transform_events(self, events: list[Event], *, host: str, site_id: str) -> list[Event]:
        """Run every transform_events implementation in turn, each on the previous output."""
        # pluggy calls implementations last-registered first; keep that order for the chain.
        for impl in reversed(self._implementations("transform_events")):
            result = self._call_one(
                "transform_events", impl.plugin_name, events=events, host=host, site_id=site_id
            )
            if result:  # pluggy leaves out a None answer
                events = list(result[0])
        return events

    def transform_lines(
        self, events: list[Event], lines: list[bytes], *, host: str, site_id: str
    ) -> Transformed:
        """``transform_events`` over events decoded from ``lines`` (their wire JSON), keeping
        each line with the event it came from so a host can pass on the bytes it received."""
        out = self.transform_events(list(events), host=host, site_id=site_id)
        line_of = {id(e): line for e, line in zip(events, lines, strict=True)}
        kept = {e.event_id for e in out}
        # Identity is sound: every input event stays alive in ``events`` meanwhile.
        return Transformed(
            events=out,
            lines=[line_of.get(id(e)) for e in out],
            dropped=[i for i, e in enumerate(events) if e.event_id not in kept],
        )

    def _implementations(self, hook_name: str) -> list[HookImpl]:
        """The plugins' implementations of a hook, without hook wrappers (do not change it)."""
        impls = self._impls.get(hook_name)
        if impls is None:
            every = getattr(self.pm.hook, hook_name).get_hookimpls()
            impls = self._impls[hook_name] = [i for i in every if not (i.wrapper or i.hookwrapper)]
        return impls

    def _call_one(self, hook_name: str, plugin_name: str, **kwargs: Any) -> list[Any]:
        """Call one plugin's implementation of a hook through pluggy: hook wrappers, tracing
        and monitoring see the call, yet each plugin's answer and failure is its own (who
        registered what; a chain of transforms). pluggy's list of non-None answers."""
        if self._tracing:
            sys.stderr.write(f"wafermon hook: {hook_name} [{plugin_name}]\n")
        answers: list[Any] = self._only(hook_name, plugin_name)(**kwargs)
        return answers

    def _only(self, hook_name: str, plugin_name: str) -> HookCaller:
        """The hook as a caller of one plugin's implementation plus every hook wrapper."""
        key = (hook_name, plugin_name)
        caller = self._callers.get(key)
        if caller is None:
            others = [
                i.plugin for i in self._implementations(hook_name) if i.plugin_name != plugin_name
            ]
            caller = self._callers[key] = self.pm.subset_hook_caller(hook_name, others)
        return caller

    def routes(self, host: str) -> list[Any]:
        """Extra routes every plugin adds to ``host``."""
        return [r for routes in self.pm.hook.register_routes(host=host) if routes for r in routes]


def _is_class_ref(ref: str) -> bool:
    module, sep, name = ref.partition(":")
    return bool(sep) and all(p.isidentifier() for p in [*module.split("."), *name.split(".")])


def _import_class(ref: str, kind: str, plugin: str) -> type[Component]:
    module_name, _, qualname = ref.partition(":")
    base = COMPONENT_KINDS[kind][1]
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:  # the plugin's import failing is its fault, reported so
        raise PluginError(f"plugin {plugin!r}: cannot import {ref}: {_reason(exc)}") from exc
    if not (isinstance(found, type) and issubclass(found, base)):
        raise PluginError(f"plugin {plugin!r}: {ref} is not a subclass of {base.__name__}")
    return found


def _reason(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` that imports each exported name from its submodule
    on first use (``{"Name": "submodule"}``).

    Every ``wafermon`` command and host loads every installed plugin's package to find its
    hooks, so a package that imports its client library at the top (an Elasticsearch, S3 or
    Kafka client) costs every host that never uses it the import time and tens of MB of RSS.
    Use as ``__getattr__ = lazy_exports(__name__, _EXPORTS)``, with ``__all__`` naming the
    same names, and import them under ``TYPE_CHECKING`` for type checkers.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{exports[name]}", package), name)

    return __getattr__
