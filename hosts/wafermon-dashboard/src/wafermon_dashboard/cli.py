"""``wafermon dashboard``, ``wafermon up`` and ``wafermon demo``.

Heavy imports (Dash, plotly, Hypercorn) happen inside the commands, so other ``wafermon``
commands start as fast as before this package was installed.
"""

from __future__ import annotations

import contextlib
import sys

import click

LISTEN = "127.0.0.1:8050"


@click.command()
@click.option("--gateway", metavar="URL", help="Read one site's gateway.")
@click.option("--central", metavar="URL", help="Read a central host (all its sites).")
@click.option("--sidecar", metavar="URL", help="Also show this sidecar's health.")
@click.option(
    "--token",
    envvar="WAFERMON_READ_TOKEN",
    help="Read token of the gateway or central (env WAFERMON_READ_TOKEN).",
)
@click.option("--listen", default=LISTEN, show_default=True, metavar="HOST:PORT")
@click.option(
    "--refresh",
    "refresh_s",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="Seconds between live updates.",
)
@click.option(
    "--count-cap",
    default=1000,
    show_default=True,
    type=click.IntRange(min=10),
    help="Live counts read at most this many jobs per status (then show N+).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def dashboard(
    gateway: str | None,
    central: str | None,
    sidecar: str | None,
    token: str | None,
    listen: str,
    refresh_s: float,
    count_cap: int,
    log_level: str,
) -> None:
    """Serve the Dash dashboards for a gateway (one site) or a central host (all sites)."""
    from wafermon_hosts.common.logs import configure_logging, get_logger
    from wafermon_hosts.common.serve import parse_listen

    from .serve import build, serve

    if (gateway is None) == (central is None):
        raise click.UsageError("give exactly one of --gateway URL or --central URL")
    try:
        parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    configure_logging(log_level.upper())
    log = get_logger("wafermon_dashboard")
    app = build(
        gateway=gateway,
        central=central,
        sidecar=sidecar,
        token=token,
        refresh_s=refresh_s,
        count_cap=count_cap,
    )
    log.info("dashboard starting", listen=listen, gateway=gateway, central=central)
    click.echo(f"wafermon dashboard on http://{listen}/", err=True)
    serve(app, listen)
    log.info("dashboard exited")


@click.command()
@click.option(
    "--data-dir",
    default="./data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the generated configs, the database, the spool and the logs go.",
)
@click.option("--demo", is_flag=True, help="Feed realistic wafer jobs while running.")
@click.option(
    "--once",
    is_flag=True,
    help="Start everything, feed a demo burst, check the dashboard, print a summary, stop.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--sidecar-port", default=17000, show_default=True, type=int)
@click.option("--gateway-port", default=18000, show_default=True, type=int)
@click.option("--central-port", default=19000, show_default=True, type=int)
@click.option("--dashboard-port", default=8050, show_default=True, type=int)
@click.option(
    "--site-id", default="fab1", show_default=True, help="The site id of the local stack."
)
def up(
    data_dir: str,
    demo: bool,
    once: bool,
    host: str,
    sidecar_port: int,
    gateway_port: int,
    central_port: int,
    dashboard_port: int,
    site_id: str,
) -> None:
    """Run sidecar + gateway + central + dashboard on embedded defaults (SQLite, files)."""
    from .up import Ports, Stack

    ports = Ports(sidecar_port, gateway_port, central_port, dashboard_port)
    stack = Stack(data_dir, host=host, ports=ports, site_id=site_id)
    sys.exit(stack.run(demo=demo or once, once=once))


@click.command()
@click.option("--sidecar", default="http://127.0.0.1:17000", show_default=True, metavar="URL")
@click.option("--token", envvar="WAFERMON_INGEST_TOKEN", help="The sidecar's ingest token.")
@click.option("--site-id", default="fab1", show_default=True)
@click.option(
    "--history", default=30, show_default=True, help="Finished lots to send first (the past)."
)
@click.option("--live/--no-live", default=True, show_default=True, help="Keep lots running.")
@click.option("--seed", type=int, default=None, help="Random seed (repeatable demos).")
def demo(
    sidecar: str, token: str | None, site_id: str, history: int, live: bool, seed: int | None
) -> None:
    """Feed realistic wafer jobs (lots with wafers) to a sidecar, live until Ctrl-C."""
    from .demo import DemoFeeder

    feeder = DemoFeeder(sidecar, site_id=site_id, token=token, seed=seed)
    sent = feeder.burst(history)
    click.echo(f"sent {sent} events for {history} finished lots to {sidecar}", err=True)
    if live:
        click.echo("starting live lots; Ctrl-C stops", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            feeder.run_forever()
    click.echo(f"{feeder.summary()}", err=True)
