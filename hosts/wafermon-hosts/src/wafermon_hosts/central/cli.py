"""``wafermon central``: load the central config, then serve (or just ``--check``).

``add_commands(cli)`` adds the command to the ``wafermon`` group; the hosts' plugin module
calls it from its ``register_commands`` hook. The heavy imports happen inside the command.
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
@click.option("--listen", metavar="HOST:PORT", help="Overrides central.listen.")
@click.option("--check", is_flag=True, help="Validate the config, then exit.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def central(config_file: str, listen: str | None, check: bool, log_level: str) -> None:
    """Run the central host: many sites' gateways behind one API (HTTP)."""
    from wafermon import ConfigError, PluginError
    from wafermon.config import load_config
    from wafermon.plugins import Plugins

    from ..common.logs import configure_logging, get_logger
    from ..common.serve import run
    from ..common.tracing import TracingUnavailable
    from .app import create_app, load_central

    configure_logging(log_level.upper())
    log = get_logger("wafermon_hosts.central")
    try:
        loaded = load_config(config_file)
        host = load_central(loaded, Plugins.discover(), listen=listen)
    except ConfigError as exc:
        _fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])
    except (PluginError, TracingUnavailable) as exc:
        _fail(str(exc))
    settings = host.settings
    scheme = "https" if settings.tls else "http"
    if check:
        sites = ", ".join(f"{s.name} ({s.url})" for s in settings.sites)
        click.echo(
            f"{config_file}: OK (central {host.site_id}); central would serve {scheme}://"
            f"{settings.listen} for {len(settings.sites)} site(s): {sites}"
        )
        return
    app = create_app(host)
    log.info("central starting", listen=settings.listen, scheme=scheme, sites=host.site_names)
    try:
        run(
            app,
            listen=settings.listen,
            certfile=settings.tls.cert if settings.tls else None,
            keyfile=settings.tls.key if settings.tls else None,
        )
    except Exception as exc:
        log.error("central failed", exc_info=exc)
        _fail(f"central failed: {exc}")
    log.info("central exited", site_id=host.site_id)


def add_commands(cli: click.Group) -> None:
    """Add ``wafermon central`` to the ``wafermon`` CLI group."""
    cli.add_command(central)
