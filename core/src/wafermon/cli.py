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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import click
import yaml

from . import __version__, schema_path
from .codec import decode_batch, encode_ndjson
from .config import LoadedConfig, load_config, parse_seconds
from .errors import BatchDecodeError, ConfigError, EmitterError, FieldValueError, PluginError
from .interfaces import Emitter, Query, QueryAdapter
from .plugins import Plugins
from .spool import verify

_plugins = functools.cache(Plugins.discover)  # one discovery per process


def _load(path: str) -> LoadedConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])


def _fail(headline: str, details: list[str] = ()) -> None:
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
        click.echo(json.dumps([attrs.asdict(info) for info in infos], indent=2))
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

    Exits 1 if any event was rejected or any backend failed; the valid events are still sent.
    """
    loaded = _load(config_file)
    plugins = _plugins()
    events, rejected = [], 0
    for stream in inputs or (click.open_file("-", "rb"),):
        label = getattr(stream, "name", "<stdin>")
        try:
            batch = decode_batch(stream.read())
        except BatchDecodeError as exc:
            _fail(f"{label}: {exc}")
        for bad in batch.rejected:
            click.echo(f"rejected {label} {bad}", err=True)
        events.extend(batch.events)
        rejected += len(batch.rejected)
    events = plugins.transform_events(events, host="cli", site_id=loaded.site.site_id)
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


async def _emit_all(emitters: list[Any], events: list[Any]) -> dict[str, str]:
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
    **filters: Any,
) -> None:
    """Read events from a configured source; prints NDJSON to stdout."""
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
    next_cursor = asyncio.run(_query_pages(adapters[source], q, all_pages))
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
            out.write(encode_ndjson(result.events))
            if not (all_pages and result.next_cursor):
                return result.next_cursor
            q = attrs.evolve(q, cursor=result.next_cursor)
    finally:
        await adapter.close()


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
