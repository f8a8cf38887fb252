"""``wafermon archive``: one archive pass (recover, archive, compact, expire) from the CLI.

It builds the gateway's managed store (``gateway.store``, default ``managed``) and the s3
source that has an ``archive:`` section from the site config, runs one pass and prints the
report as JSON. The gateway runs the same pass every ``gateway.retention_interval``.
"""

from __future__ import annotations

import asyncio
import sys

import click


@click.command(name="archive")
@click.option("-c", "--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--source", help="The s3 source to archive into (default: the one with archive:).")
@click.option("--no-compact", is_flag=True, help="Skip compaction in this pass.")
def archive(config_file: str, source: str | None, no_compact: bool) -> None:
    """Move events older than the hot window from the managed store to the S3 archive."""
    import attrs
    import orjson

    from wafermon import ConfigError, PluginError, WafermonError
    from wafermon.config import load_config
    from wafermon.plugins import Plugins

    try:
        loaded = load_config(config_file)
        plugins = Plugins.discover()
        store, adapter = _components(loaded, plugins, source)
    except ConfigError as exc:
        _fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])
    except (PluginError, ValueError) as exc:
        _fail(str(exc))
    if no_compact:
        settings = attrs.evolve(adapter.settings.archive, compact=False)
        adapter.settings = attrs.evolve(adapter.settings, archive=settings)

    async def run():
        await store.start()
        try:
            await adapter.start()
            try:
                return await adapter.archive_report(store)
            finally:
                await adapter.close()
        finally:
            await store.close()

    try:
        report = asyncio.run(run())
    except WafermonError as exc:
        _fail(f"archive pass failed: {exc}")
    click.echo(orjson.dumps(attrs.asdict(report), option=orjson.OPT_INDENT_2).decode())


def _components(loaded, plugins, source: str | None):
    from .adapter import S3QueryAdapter

    store_name = (loaded.site.gateway or {}).get("store", "managed")
    index, entry = loaded.find("backends", store_name)
    if entry is None:
        raise ValueError(f"no backend named {store_name!r} (gateway.store) to archive")
    store = loaded.build_entry("backends", index, entry, plugins)
    candidates = [
        (i, e)
        for i, e in loaded.enabled("sources")
        if e.type == "s3" and (source is None or e.name == source)
    ]
    for i, e in candidates:
        adapter = loaded.build_entry("sources", i, e, plugins)
        if isinstance(adapter, S3QueryAdapter) and adapter.settings.archive is not None:
            return store, adapter
    named = f"named {source!r} " if source else ""
    raise ValueError(f"no enabled s3 source {named}with an archive: section in its config")


def _fail(headline: str, details=()) -> None:
    click.echo(f"error: {headline}", err=True)
    for line in details:
        click.echo(f"  - {line}", err=True)
    sys.exit(1)
