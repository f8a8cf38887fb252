"""The ``sidecar:`` section of the site config, and building the backends it routes to.

Problems are reported like every other config problem: all at once, each with its key path
and line (``sidecar.spool.max_bytes (line 5): ...``), raised as ConfigError.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from wafermon import ByteSize, ConfigError, Emitter, Problem, Seconds
from wafermon.config import LoadedConfig
from wafermon.plugins import Plugins
from wafermon.router import RetryPolicy
from wafermon.spool import MAX_RECORD_BYTES

from ..common.auth import INGEST, READ, Tokens
from ..common.settings import (
    TlsSettings,
    TracingSettings,
    auth_problems,
    check_listen,
    host_settings,
    not_negative,
    positive,
    tls_problems,
)

#: Token scopes the sidecar's routes need: ingest for events, read for health details and
#: plugin routes.
SERVED_SCOPES = (INGEST, READ)

#: One request becomes one spool record; the spool refuses records above MAX_RECORD_BYTES.
MAX_BODY_LIMIT = MAX_RECORD_BYTES // 2


@attrs.frozen
class SpoolSettings:
    """Where acknowledged events wait for every backend, and how much of the disk they may use."""

    dir: Path | None = None  # None: data/spool next to the config file
    max_bytes: ByteSize = attrs.field(default=ByteSize(2**30), validator=positive)
    segment_bytes: ByteSize = attrs.field(default=ByteSize(64 * 2**20), validator=positive)


@attrs.frozen
class RetrySettings:
    """How hard the router tries each backend (``wafermon.router.RetryPolicy``)."""

    timeout: Seconds = attrs.field(default=Seconds(30.0), validator=positive)
    base_delay: Seconds = attrs.field(default=Seconds(0.2), validator=positive)
    max_delay: Seconds = attrs.field(default=Seconds(30.0), validator=positive)
    failure_threshold: int = attrs.field(default=5, validator=positive)
    open_seconds: Seconds = attrs.field(default=Seconds(30.0), validator=positive)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            timeout_s=self.timeout,
            base_delay_s=self.base_delay,
            max_delay_s=self.max_delay,
            failure_threshold=self.failure_threshold,
            open_seconds=self.open_seconds,
        )


@attrs.frozen
class SidecarSettings:
    """Everything under ``sidecar:`` in the site config."""

    listen: str = attrs.field(default="127.0.0.1:17000", validator=check_listen)
    spool: SpoolSettings = SpoolSettings()
    backends: list[str] | None = None  # None: every enabled backend
    tokens: Tokens = Tokens()
    insecure: bool = False  # accept a non-loopback listen without tokens, on purpose
    max_body_bytes: ByteSize = attrs.field(default=ByteSize(16 * 2**20), validator=positive)
    max_batch_events: int = attrs.field(default=10_000, validator=positive)
    retry: RetrySettings = RetrySettings()
    #: Spool payload handed to a backend in one emit (at least one record): bigger batches
    #: cost memory (~3.5x in decoded events) while a backend is behind, smaller ones requests.
    delivery_batch_bytes: ByteSize = attrs.field(default=ByteSize(2**20), validator=positive)
    #: After a part batch, how long a backend's loop lets records gather before the next.
    delivery_linger: Seconds = attrs.field(default=Seconds(0.05), validator=not_negative)
    dead_letter_dir: Path | None = None  # None: dead-letter next to the spool directory
    drain_timeout: Seconds = attrs.field(default=Seconds(10.0), validator=positive)
    tls: TlsSettings | None = None
    tracing: TracingSettings = TracingSettings()


@attrs.frozen
class BackendPlan:
    """One routed backend: its emitter (not started) and the backend its rejects go to."""

    name: str
    type: str
    priority: int
    emitter: Emitter
    fallback: str | None


@attrs.frozen
class SidecarParts:
    """What a sidecar is built from: settings with resolved paths, and its backends."""

    site_id: str
    settings: SidecarSettings
    spool_dir: Path
    dead_letter_dir: Path
    routes: list[BackendPlan]  # by priority
    emitters: dict[str, Emitter]  # routed backends and their fallbacks, by name
    types: dict[str, str]  # backend name -> type


def build_sidecar(
    loaded: LoadedConfig, plugins: Plugins, *, listen: str | None = None
) -> SidecarParts:
    """Structure ``sidecar:``, then build every backend it routes to; ConfigError lists faults.

    A missing plugin raises PluginError (from the core) naming the entry that needs it.
    """
    settings = host_settings(loaded, SidecarSettings, "sidecar", listen)
    spool_dir = (settings.spool.dir or loaded.path.parent / "data" / "spool").absolute()
    dead_letter_dir = (settings.dead_letter_dir or spool_dir.parent / "dead-letter").absolute()
    problems = tls_problems(loaded, "sidecar", settings.tls) + _limits(loaded, settings)
    problems += auth_problems(loaded, "sidecar", settings, SERVED_SCOPES)
    routed = _routed(loaded, settings, problems)
    wanted = dict.fromkeys(
        [e.name for _i, e in routed] + [e.fallback for _i, e in routed if e.fallback]
    )
    emitters: dict[str, Emitter] = {}
    types: dict[str, str] = {}
    for name in wanted:
        index, entry = loaded.find("backends", name)
        # _routed kept only the names of existing backends
        assert index is not None
        assert entry is not None
        types[name] = entry.type
        try:
            emitters[name] = loaded.build_entry("backends", index, entry, plugins)
        except ConfigError as exc:
            problems.extend(attrs.evolve(p, path=f"$.{p.path}") for p in exc.problems)
    if problems:
        relative = [attrs.evolve(p, path=p.path.removeprefix("$.")) for p in problems]
        raise ConfigError(relative, str(loaded.path))
    plans = [
        BackendPlan(e.name, e.type, e.priority, emitters[e.name], e.fallback) for _, e in routed
    ]
    return SidecarParts(
        loaded.site.site_id,
        attrs.evolve(
            settings,
            spool=attrs.evolve(settings.spool, dir=spool_dir),
            dead_letter_dir=dead_letter_dir,
        ),
        spool_dir,
        dead_letter_dir,
        plans,
        emitters,
        types,
    )


def _limits(loaded: LoadedConfig, s: SidecarSettings) -> list[Problem]:
    """Sizes that cannot work together: a request that could never fit in the spool."""
    problems = []
    if s.max_body_bytes > MAX_BODY_LIMIT:
        problems.append(
            loaded.problem(
                "$.sidecar.max_body_bytes",
                f"must be at most {MAX_BODY_LIMIT} bytes (one request is one spool record), "
                f"got {s.max_body_bytes}",
            )
        )
    # A drained spool keeps its active segment (up to segment_bytes plus one record); the
    # largest request must still fit beside it, or the sidecar would answer 503 forever.
    need = s.spool.segment_bytes + 2 * s.max_body_bytes
    if s.spool.max_bytes < need:
        problems.append(
            loaded.problem(
                "$.sidecar.spool.max_bytes",
                f"must be at least spool.segment_bytes + 2 x max_body_bytes = {need} bytes, "
                f"got {s.spool.max_bytes}",
            )
        )
    return problems


def _routed(loaded: LoadedConfig, settings: SidecarSettings, problems: list[Problem]) -> list:
    """(index, entry) of the backends the router delivers to, by priority."""
    enabled = loaded.enabled("backends")
    if settings.backends is None:
        routed = enabled
        where = "$.backends"
    else:
        by_name = {e.name: (i, e) for i, e in enabled}
        routed = []
        for i, name in enumerate(settings.backends):
            if name in by_name:
                routed.append(by_name[name])
                continue
            _index, entry = loaded.find("backends", name)
            state = "no backend" if entry is None else "disabled backend"
            problems.append(
                loaded.problem(f"$.sidecar.backends[{i}]", f"{state} named {name!r} under backends")
            )
        routed.sort(key=lambda ie: ie[1].priority)
        where = "$.sidecar.backends"
    if not routed and not problems:
        problems.append(
            loaded.problem(
                where,
                "the sidecar routes to no backend: it would accept events and deliver them "
                "nowhere; add an enabled backend",
            )
        )
    return routed
