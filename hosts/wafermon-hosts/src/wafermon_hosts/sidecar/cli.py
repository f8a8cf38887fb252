"""``wafermon sidecar``: load the site config and plugins, then serve (or just ``--check``).

The heavy imports (Starlette, Hypercorn) happen inside the command, so every other
``wafermon`` command starts as fast as before this package was installed.
"""

from __future__ import annotations

import sys

import click


def _fail(headline: str, details: list[str] = ()) -> None:
    click.echo(f"error: {headline}", err=True)
    for line in details:
        click.echo(f"  - {line}", err=True)
    sys.exit(1)


@click.command()
@click.option("-c", "--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--listen", metavar="HOST:PORT", help="Overrides sidecar.listen.")
@click.option("--check", is_flag=True, help="Validate the config and plugins, then exit.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def sidecar(config_file: str, listen: str | None, check: bool, log_level: str) -> None:
    """Run the node sidecar: durable spool, delivery to every backend (HTTP API)."""
    from wafermon import ConfigError, PluginError
    from wafermon.config import load_config
    from wafermon.plugins import Plugins

    from ..common.logs import configure_logging, get_logger
    from ..common.serve import run
    from ..common.tracing import TracingUnavailable
    from .app import create_app, load_sidecar

    configure_logging(log_level.upper())
    log = get_logger("wafermon_hosts.sidecar")
    try:
        loaded = load_config(config_file)
        sc = load_sidecar(loaded, Plugins.discover(), listen=listen)
    except ConfigError as exc:
        _fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])
    except (PluginError, TracingUnavailable) as exc:
        _fail(str(exc))
    settings = sc.settings
    scheme = "https" if settings.tls else "http"
    if check:
        routes = ", ".join(
            f"{r.name} ({sc.types[r.name]}"
            + (f", fallback {r.fallback.name}" if r.fallback else "")
            + ")"
            for r in sc.routes
        )
        click.echo(
            f"{config_file}: OK (site {sc.site_id}); sidecar would serve {scheme}://"
            f"{settings.listen} with spool {sc.spool_dir} (cap {settings.spool.max_bytes} "
            f"bytes), backends: {routes}"
        )
        return
    app = create_app(sc)
    log.info("sidecar starting", listen=settings.listen, scheme=scheme, site_id=sc.site_id)
    try:
        run(
            app,
            listen=settings.listen,
            certfile=settings.tls.cert if settings.tls else None,
            keyfile=settings.tls.key if settings.tls else None,
            on_stop=[sc.stop_accepting],
        )
    except Exception as exc:
        if sc.start_error is None:
            log.error("sidecar failed", exc_info=exc)
            _fail(f"sidecar failed: {exc}")
        _fail(sc.start_error)
    log.info("sidecar exited", site_id=sc.site_id)
