"""``wafermon gateway``: load the site config and plugins, then serve (or just ``--check``).

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
@click.option("--listen", metavar="HOST:PORT", help="Overrides gateway.listen.")
@click.option("--check", is_flag=True, help="Validate the config and plugins, then exit.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def gateway(config_file: str, listen: str | None, check: bool, log_level: str) -> None:
    """Run the site gateway: managed store, external sources, unified view (HTTP API)."""
    from wafermon import ConfigError, PluginError
    from wafermon.config import load_config
    from wafermon.plugins import Plugins

    from ..common.logs import configure_logging, get_logger
    from ..common.serve import run
    from ..common.tracing import TracingUnavailable
    from .app import create_app, load_gateway

    configure_logging(log_level.upper())
    log = get_logger("wafermon_hosts.gateway")
    try:
        loaded = load_config(config_file)
        gw = load_gateway(loaded, Plugins.discover(), listen=listen)
    except ConfigError as exc:
        _fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])
    except (PluginError, TracingUnavailable) as exc:
        _fail(str(exc))
    settings = gw.settings
    scheme = "https" if settings.tls else "http"
    if check:
        sources = ", ".join(gw.sources) or "none"
        click.echo(
            f"{config_file}: OK (site {gw.site_id}); gateway would serve {scheme}://"
            f"{settings.listen} with store {gw.store.name} ({gw.store_type}), sources: {sources}"
        )
        return
    app = create_app(gw)
    log.info("gateway starting", listen=settings.listen, scheme=scheme, site_id=gw.site_id)
    try:
        run(
            app,
            listen=settings.listen,
            certfile=settings.tls.cert if settings.tls else None,
            keyfile=settings.tls.key if settings.tls else None,
            on_stop=[gw.stream.close],
        )
    except Exception as exc:
        if gw.start_error is None:
            log.error("gateway failed", exc_info=exc)
            _fail(f"gateway failed: {exc}")
        _fail(gw.start_error)
    log.info("gateway exited", site_id=gw.site_id)
