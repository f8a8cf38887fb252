"""The ``gateway:`` section of the site config, and building the components it names.

Problems are reported like every other config problem: all at once, each with its key path
and line (``gateway.store (line 4): no backend named 'db' ...``), raised as ConfigError.
"""

from __future__ import annotations

from typing import Any, cast

import attrs

from wafermon import ByteSize, ConfigError, Problem, QueryAdapter, Seconds, StreamConsumer
from wafermon.config import LoadedConfig
from wafermon.plugins import Plugins
from wafermon.store import ManagedStore

from ..common.auth import ADMIN, INGEST, READ, Tokens
from ..common.health import HEALTH_TTL
from ..common.settings import (
    TlsSettings,
    TracingSettings,
    auth_problems,
    host_settings,
    not_negative,
    tls_problems,
)
from ..common.settings import check_listen as _listen
from ..common.settings import positive as _positive
from .alerting.settings import AlertingSettings, alerting_problems, build_notifiers
from .consume import StreamEntry, build_consumers

#: The name the managed store has in the unified view and in POST /v1/query/external.
MANAGED = "managed"
#: Token scopes the gateway's routes need (plugin routes need read; admin: alerting writes).
SERVED_SCOPES = (INGEST, READ, ADMIN)
#: Scopes a non-loopback listen needs a token for. Not admin: once any token is set a scope
#: without one is closed to everybody, and a host without any token fails on ingest and read.
EXPOSED_SCOPES = (INGEST, READ)


@attrs.frozen
class GatewaySettings:
    """Everything under ``gateway:`` in the site config."""

    listen: str = attrs.field(default="127.0.0.1:18000", validator=_listen)
    store: str = MANAGED
    sources: list[str] | None = None  # None: every enabled source
    tokens: Tokens = Tokens()
    insecure: bool = False  # accept a non-loopback listen without tokens, on purpose
    max_body_bytes: ByteSize = attrs.field(default=ByteSize(16 * 2**20), validator=_positive)
    max_batch_events: int = attrs.field(default=10_000, validator=_positive)
    tls: TlsSettings | None = None
    source_timeout: Seconds = attrs.field(default=Seconds(5.0), validator=_positive)
    retention_interval: Seconds = attrs.field(default=Seconds(600.0), validator=_positive)
    #: How long a health check's result is reused by /v1/healthz and /metrics.
    health_ttl: Seconds = attrs.field(default=Seconds(HEALTH_TTL), validator=not_negative)
    tracing: TracingSettings = TracingSettings()
    alerting: AlertingSettings = AlertingSettings()
    #: Topics/streams this gateway consumes into its store as one member of a group.
    streams: list[StreamEntry] = attrs.Factory(list)


@attrs.frozen
class GatewayParts:
    """What a gateway is built from: its settings and its (not yet started) components."""

    site_id: str
    settings: GatewaySettings
    store: ManagedStore
    store_type: str
    sources: dict[str, QueryAdapter]
    notifiers: dict[str, Any] = attrs.Factory(dict)  # built when gateway.alerting is enabled
    #: gateway.streams: name -> (StreamConsumer, max_in_flight)
    streams: dict[str, tuple[StreamConsumer, int]] = attrs.Factory(dict)


def build_gateway(
    loaded: LoadedConfig, plugins: Plugins, *, listen: str | None = None
) -> GatewayParts:
    """Structure ``gateway:``, then build its store and sources; ConfigError lists all faults.

    A missing plugin raises PluginError (from the core) naming the entry that needs it.
    """
    settings = host_settings(loaded, GatewaySettings, "gateway", listen)
    problems: list[Problem] = tls_problems(loaded, "gateway", settings.tls)
    problems += auth_problems(loaded, "gateway", settings, EXPOSED_SCOPES)
    store, store_type = _build_store(loaded, plugins, settings, problems)
    sources = _build_sources(loaded, plugins, settings, problems)
    notifiers = _build_alerting(loaded, plugins, settings, problems)
    streams = build_consumers(loaded, plugins, settings.streams, problems)
    if problems:
        relative = [attrs.evolve(p, path=p.path.removeprefix("$.")) for p in problems]
        raise ConfigError(relative, str(loaded.path))
    assert store is not None
    return GatewayParts(
        loaded.site.site_id,
        settings,
        store,
        store_type,
        sources,
        streams=streams,
        notifiers=notifiers,
    )


def _build_alerting(
    loaded: LoadedConfig, plugins: Plugins, settings: GatewaySettings, problems: list[Problem]
) -> dict[str, Any]:
    """The notifiers ``gateway.alerting`` routes to, after its cross-key checks."""
    if not settings.alerting.enabled:
        return {}
    from .alerting.hookspecs import add_to
    from .alerting.rules import rule_types

    add_to(plugins.pm)
    problems += alerting_problems(loaded, settings.alerting, plugins, set(rule_types(plugins)))
    return build_notifiers(loaded, plugins, problems)


def _build_store(
    loaded: LoadedConfig, plugins: Plugins, settings: GatewaySettings, problems: list[Problem]
) -> tuple[ManagedStore | None, str]:
    where = "$.gateway.store"
    index, entry = loaded.find("backends", settings.store)
    if index is None or entry is None:
        have = ", ".join(e.name for e in loaded.site.backends) or "none"
        problems.append(
            loaded.problem(where, f"no backend named {settings.store!r} (backends: {have})")
        )
        return None, ""
    if not entry.enabled:
        problems.append(loaded.problem(where, f"backend {settings.store!r} is disabled"))
        return None, ""
    provided = loaded.require_plugin("backends", index, entry, plugins)
    if not issubclass(provided.cls, ManagedStore):
        managed = sorted(
            name for name, p in plugins.types("emitter").items() if issubclass(p.cls, ManagedStore)
        )
        problems.append(
            loaded.problem(
                where,
                f"backend {entry.name!r} has type {entry.type!r}, which is not a managed store "
                f"(managed store types installed: {', '.join(managed) or 'none'})",
            )
        )
        return None, ""
    try:
        store = cast(ManagedStore, loaded.build_entry("backends", index, entry, plugins))
    except ConfigError as exc:
        problems.extend(attrs.evolve(p, path=f"$.{p.path}") for p in exc.problems)
        return None, ""
    return store, entry.type


def _build_sources(
    loaded: LoadedConfig, plugins: Plugins, settings: GatewaySettings, problems: list[Problem]
) -> dict[str, QueryAdapter]:
    if settings.sources is None:
        wanted = [(f"$.sources[{i}].name", e.name) for i, e in loaded.enabled("sources")]
    else:
        wanted = [(f"$.gateway.sources[{i}]", n) for i, n in enumerate(settings.sources)]
    sources: dict[str, QueryAdapter] = {}
    for where, name in wanted:
        if name == MANAGED:
            problems.append(
                loaded.problem(where, f"{MANAGED!r} names the managed store; rename this source")
            )
            continue
        index, entry = loaded.find("sources", name)
        if index is None or entry is None or not entry.enabled:
            state = "no source" if entry is None else "disabled source"
            problems.append(loaded.problem(where, f"{state} named {name!r} under sources"))
            continue
        try:
            sources[name] = loaded.build_entry("sources", index, entry, plugins)
        except ConfigError as exc:
            problems.extend(attrs.evolve(p, path=f"$.{p.path}") for p in exc.problems)
    return sources
