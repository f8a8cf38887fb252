"""The ``wafermon`` command: inspect plugins and configs, send and read events.

Host commands (``wafermon gateway``, ``wafermon sidecar`` ...) are added by the host packages
through the ``register_commands`` hook. Output meant for machines goes to stdout, everything
meant for people to stderr.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, cast

import attrs
import click
import yaml

from . import __version__, schema_path
from .batch import EventBatch
from .codec import encode_ndjson
from .config import (
    LoadedConfig,
    describe_settings,
    load_config,
    parse_seconds,
    strip_credentials,
)
from .errors import BatchDecodeError, ConfigError, EmitterError, FieldValueError, PluginError
from .ingest import admit
from .interfaces import Emitter, Query, QueryAdapter
from .plugins import Plugins
from .spool import verify
from .wire import read_batch

_plugins = functools.cache(Plugins.discover)  # one discovery per process


def _load(path: str) -> LoadedConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])


def _fail(headline: str, details: Sequence[str] = ()) -> NoReturn:
    click.echo(f"error: {headline}", err=True)
    for line in details:
        click.echo(f"  - {line}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wafermon")
def cli() -> None:
    """wafermon: job monitoring for fabs and batch shops."""
    _configure_logging()


def _configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="wafermon: %(levelname)s %(message)s")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins, their versions and what each provides."""
    infos = _plugins().info()
    if as_json:
        click.echo(json.dumps([_plugin_json(info) for info in infos], indent=2))
        return
    if not infos:
        if os.environ.get("WAFERMON_LOAD_PLUGINS") is not None:
            click.echo("no plugins loaded (WAFERMON_LOAD_PLUGINS limits which are)")
        else:
            click.echo("no plugins installed (pip install wafermon-backend-filesystem, ...)")
    for info in infos:
        version = f" {info.version}" if info.version else ""
        dist = f" ({info.distribution}{version})" if info.distribution else ""
        click.echo(f"{info.name}{dist}")
        if info.error:
            click.echo(f"  BROKEN: {info.error}")
            continue
        click.echo(f"  provides: {', '.join(info.provides) or '-'}")
        click.echo(f"  hooks:    {', '.join(info.hooks) or '-'}")
        for warning in info.warnings:
            click.echo(f"  WARNING: {warning}")


def _plugin_json(info: Any) -> dict[str, Any]:
    """A plugin as ``plugins --json`` shows it: its info, and each component's settings."""
    out = attrs.asdict(info)
    out["components"] = []
    for provided in info.provides:
        kind, _, type_name = provided.partition(":")
        entry: dict[str, Any] = {"kind": kind, "type": type_name}
        try:
            settings = getattr(_plugins().types(kind)[type_name].cls, "Settings", None)
            if settings is not None and attrs.has(settings):
                entry["settings"] = describe_settings(settings)
            else:
                entry["settings"] = []
        except Exception as exc:  # noqa: BLE001 - a lazily imported class that fails to import
            entry["settings"] = None
            entry["error"] = str(exc)
        out["components"].append(entry)
    return out


@cli.group()
def config() -> None:
    """Check and show site config files."""


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate FILE, its plugins and each enabled component's settings."""
    loaded = _load(file)
    problems = loaded.check(_plugins())
    if problems:
        _fail(f"{file}: {len(problems)} problem(s)", problems)
    site = loaded.site
    click.echo(f"{file}: OK (site {site.site_id})")
    for section in ("backends", "sources"):
        for entry in getattr(site, section):
            state = "" if entry.enabled else " (disabled)"
            click.echo(f"  {section[:-1]} {entry.name}: type {entry.type}{state}")


@config.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
def config_show(file: str) -> None:
    """Print FILE after interpolation, with every secret masked."""
    click.echo(yaml.safe_dump(_load(file).masked(_plugins()), sort_keys=False), nl=False)


@cli.group()
def plugin() -> None:
    """Write your own plugin (docs/plugin-tutorial.md)."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False)
)
def plugin_new(name: str, directory: str) -> None:
    """Create wafermon-backend-NAME/: a working emitter, its tests (wafermon.testing's contract
    suite) and a README."""
    from .scaffold import new_plugin

    try:
        target = new_plugin(name, Path(directory))
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    click.echo(f"created {target}")
    click.echo(f"next: pip install -e '{target}[test]' && pytest {target}")


@cli.group()
def spool() -> None:
    """Inspect and verify a durable spool directory (read-only)."""


@spool.command("inspect")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
def spool_inspect(directory: str) -> None:
    """Segments, records, bytes, and each backend's acknowledged position and lag."""
    segments, problems = verify(directory)
    last = max((s["last_seq"] or 0 for s in segments), default=0)
    click.echo(
        f"{directory}: {len(segments)} segment(s), "
        f"{sum(s['records'] for s in segments)} record(s), "
        f"{sum(s['bytes'] for s in segments)} bytes, last seq {last}"
    )
    for s in segments:
        click.echo(
            f"  {s['segment']}  seq {s['first_seq']}..{s['last_seq']}  "
            f"{s['records']} records  {s['bytes']} bytes"
        )
    for ack in sorted(Path(directory, "acks").glob("*.ack")):
        acked = int(ack.read_text().strip() or 0)
        click.echo(f"  backend {ack.stem}: acked {acked}, lag {max(0, last - acked)} record(s)")
    for problem in problems:
        click.echo(f"  CORRUPT {problem.path.name} at byte {problem.offset}: {problem.reason}")


@spool.command("verify")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
def spool_verify(directory: str) -> None:
    """Check every record's checksum; exit 1 if any segment is corrupt or torn."""
    segments, problems = verify(directory)
    for problem in problems:
        click.echo(
            f"{problem.path}: {problem.reason} at byte {problem.offset} "
            f"({problem.bytes_after} bytes unreadable)",
            err=True,
        )
    if problems:
        sys.exit(1)
    click.echo(
        f"{directory}: OK, {sum(s['records'] for s in segments)} record(s) in "
        f"{len(segments)} segment(s)"
    )


@cli.command()
def schema() -> None:
    """Print the wire event's JSON Schema (the cross-language contract)."""
    click.echo(schema_path().read_text(encoding="utf-8"), nl=False)


@cli.command()
@click.option("-c", "--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, type=click.File("rb"))
def emit(config_file: str, inputs: tuple[Any, ...]) -> None:
    """Send events (JSON array, NDJSON or one object; files or stdin) to every enabled backend.

    Each input is read as the sidecar and gateway read a body (``wafermon.wire``) and goes
    through the same rules (``wafermon.ingest``): a bad item is reported with its index, the
    field and the reason, a repeated event_id is sent once, the transform_events plugins run.
    Exits 1 if any event was rejected or any backend failed; the valid events are still sent.
    """
    loaded = _load(config_file)
    plugins = _plugins()
    batches, rejected = [], 0
    for stream in inputs or (click.open_file("-", "rb"),):
        label = getattr(stream, "name", "<stdin>")
        try:
            batch = read_batch(stream.read())
        except BatchDecodeError as exc:
            _fail(f"{label}: {exc}")
        admitted = admit(batch, plugins, host="cli", site_id=loaded.site.site_id, dedupe=True)
        for verdict in admitted.results:
            click.echo(f"{verdict.status} {label} {verdict}", err=True)
        batches.append(admitted.batch())
        rejected += sum(v.status == "rejected" for v in admitted.results)
    events = EventBatch.concat(batches) if batches else EventBatch(events=[])
    try:
        emitters = loaded.build("backends", plugins)
    except (ConfigError, PluginError) as exc:
        _fail(str(exc))
    if not emitters:
        _fail(f"{config_file}: no enabled backends to send to")
    failures = asyncio.run(_emit_all(emitters, events))
    for emitter in emitters:
        outcome = failures.get(emitter.name, f"{len(events)} events")
        click.echo(f"{emitter.name}: {outcome}", err=True)
    if failures or rejected:
        sys.exit(1)


async def _emit_all(emitters: list[Any], events: EventBatch) -> dict[str, str]:
    async def one(emitter: Emitter) -> str | None:
        try:
            await emitter.start()
            if events:
                await emitter.emit(events)
        except EmitterError as exc:
            kind = "retryable" if exc.retryable else "permanent"
            return f"FAILED ({kind}): {exc}"
        finally:
            await emitter.close()
        return None

    results = await asyncio.gather(*(one(e) for e in emitters))
    return {e.name: r for e, r in zip(emitters, results, strict=True) if r is not None}


def _when(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time, or a duration meaning that long ago (``2h``, ``3d``)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            return datetime.now(UTC) - timedelta(seconds=parse_seconds(value))
        except ValueError:
            raise click.BadParameter(
                f"expected an ISO time or a duration like 2h, got {value!r}", param_hint=option
            ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@cli.command()
@click.option("-c", "--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--source", required=True, help="Name of an entry under sources:.")
@click.option("--since", help="Start of the time range: ISO time or a duration ago (2h).")
@click.option("--until", help="End of the time range (exclusive).")
@click.option("--site", "site_id")
@click.option("--app")
@click.option("--entity-type", type=click.Choice(["job", "subjob"]))
@click.option("--entity-id")
@click.option("--status", type=click.Choice(["running", "finished", "failed"]))
@click.option("--business-key")
@click.option("--sub-key")
@click.option("--parent", "parent_id", metavar="JOB_ID", help="Only events of this job's subjobs.")
@click.option("--subjobs", is_flag=True, help="Only subjob events (--entity-type subjob).")
@click.option("--limit", type=int, default=1000, show_default=True, help="Events per page.")
@click.option("--cursor", help="Continue after a previous page.")
@click.option("--all", "all_pages", is_flag=True, help="Follow cursors to the last page.")
def query(
    config_file: str,
    source: str,
    since: str | None,
    until: str | None,
    all_pages: bool,
    cursor: str | None,
    subjobs: bool,
    **filters: Any,
) -> None:
    """Read events from a configured source; prints NDJSON to stdout."""
    if subjobs:
        if filters["entity_type"] == "job":
            raise click.BadParameter("contradicts --entity-type job", param_hint="--subjobs")
        filters["entity_type"] = "subjob"
    loaded = _load(config_file)
    plugins = _plugins()
    try:
        adapters = {a.name: a for a in loaded.build("sources", plugins)}
    except (ConfigError, PluginError) as exc:
        _fail(str(exc))
    if source not in adapters:
        _fail(
            f"{config_file}: no enabled source named {source!r}; have: "
            f"{', '.join(adapters) or 'none'}"
        )
    try:
        q = Query(
            start=_when(since, "--since"), end=_when(until, "--until"), cursor=cursor, **filters
        )
    except FieldValueError as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.field}") from None
    adapter = cast(QueryAdapter, adapters[source])  # built from sources: a query adapter
    next_cursor = asyncio.run(_query_pages(adapter, q, all_pages))
    if next_cursor:
        click.echo(f"more: --cursor {next_cursor}", err=True)


async def _query_pages(adapter: QueryAdapter, q: Query, all_pages: bool) -> str | None:
    out = click.open_file("-", "wb")
    await adapter.start()
    try:
        while True:
            try:
                result = await adapter.query(q)
            except FieldValueError as exc:
                _fail(f"--{exc.field}: {exc.message}")
            # An adapter that does not push a filter down (parent_id is newer than some)
            # still cannot leak other events onto the page.
            out.write(encode_ndjson([e for e in result.events if q.matches(e)]))
            if not (all_pages and result.next_cursor):
                return result.next_cursor
            q = attrs.evolve(q, cursor=result.next_cursor)
    finally:
        await adapter.close()


# -- reading a gateway from the terminal -----------------------------------------------------

_gateway_options = [
    click.option(
        "--gateway",
        envvar="WAFERMON_GATEWAY",
        default="http://127.0.0.1:18000",
        show_default=True,
        help="The gateway's URL (env WAFERMON_GATEWAY).",
    ),
    click.option(
        "--token",
        envvar="WAFERMON_TOKEN",
        help="A read token, sent as a Bearer token (env WAFERMON_TOKEN; never printed).",
    ),
]


def _with_gateway(fn: Any) -> Any:
    for option in reversed(_gateway_options):
        fn = option(fn)
    return fn


_MAX_ANSWER_BYTES = 64 * 2**20  # a page of jobs or a job's detail; more is a mistake


def _get_json(gateway: str, token: str | None, path: str, params: dict[str, Any]) -> Any:
    """GET a gateway path; stdlib urllib, so the core needs no HTTP client for two GETs."""
    import urllib.error
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, False)})
    url = f"{gateway.rstrip('/')}{path}" + (f"?{query}" if query else "")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    shown = strip_credentials(url)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        _fail(f"--gateway: expected an http:// or https:// URL, got {shown!r}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read(_MAX_ANSWER_BYTES + 1)
        if len(body) > _MAX_ANSWER_BYTES:
            _fail(f"{shown}: answer larger than {_MAX_ANSWER_BYTES} bytes; lower --limit")
        return json.loads(body)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", "")
        except (ValueError, AttributeError):
            detail = ""
        reason = f"HTTP {exc.code} {exc.reason or ''}".rstrip()
        _fail(f"{shown}: {reason}" + (f": {detail}" if detail else ""))
    except (urllib.error.URLError, OSError) as exc:
        _fail(f"{shown}: {getattr(exc, 'reason', exc)}")


def _entity_rows(items: list[dict[str, Any]]) -> None:
    columns = ("entity_id", "status", "app", "business_key", "sub_key", "started_at", "finished_at")
    rows = [[str(item.get(c) or "-") for c in columns] for item in items]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    for row in [list(columns), *rows]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@cli.command()
@_with_gateway
@click.option("--status", type=click.Choice(["running", "finished", "failed"]))
@click.option("--app")
@click.option("--site", "site")
@click.option("--business-key")
@click.option("--since", help="Started at or after: ISO time or a duration ago (2h).")
@click.option("--parent", "parent_id", metavar="JOB_ID", help="List the subjobs of this job.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The gateway's JSON answer as is.")
def jobs(
    gateway: str,
    token: str | None,
    parent_id: str | None,
    since: str | None,
    as_json: bool,
    **f: Any,
) -> None:
    """List a gateway's jobs (or a job's subjobs), newest first."""
    start = _when(since, "--since")
    params = {**f, "since": start.isoformat() if start else None}
    if parent_id:
        params["parent_id"] = parent_id
    page = _get_json(gateway, token, "/v1/subjobs" if parent_id else "/v1/jobs", params)
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    _entity_rows(page["items"])
    if page.get("next_cursor"):
        click.echo(f"more: raise --limit (at most {len(page['items'])} shown)", err=True)


@cli.command()
@_with_gateway
@click.argument("job_id")
@click.option("--events", "events_limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The gateway's JSON answer as is.")
def job(gateway: str, token: str | None, job_id: str, events_limit: int, as_json: bool) -> None:
    """Show one job or subjob: its state, its subjobs and its latest events."""
    import urllib.parse

    detail = _get_json(
        gateway,
        token,
        f"/v1/jobs/{urllib.parse.quote(job_id, safe='')}",
        {"events_limit": events_limit},
    )
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    for key, value in detail["job"].items():
        if value not in (None, "", {}, []):
            click.echo(f"{key}: {json.dumps(value) if isinstance(value, dict | list) else value}")
    if detail["subjobs"]:
        click.echo(f"\nsubjobs ({len(detail['subjobs'])}):")
        _entity_rows(detail["subjobs"])
    click.echo(f"\nevents ({len(detail['events'])}, newest last):")
    for event in detail["events"]:
        extra = event.get("error", {}).get("message") or event.get("progress", {}).get("message")
        entity = event["entity"]["id"]
        click.echo(
            f"  {event['time']}  {event['kind']:<9} {entity}" + (f"  {extra}" if extra else "")
        )


def main() -> None:
    """Entry point: add plugin commands, then run."""
    _configure_logging()  # before plugin discovery, which may warn about broken plugins
    try:
        _plugins().pm.hook.register_commands(cli=cli)
    except PluginError as exc:
        _fail(str(exc))
    cli()


if __name__ == "__main__":
    main()
