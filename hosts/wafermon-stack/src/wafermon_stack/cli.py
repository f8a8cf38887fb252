"""``wafermon up`` and ``wafermon demo``.

The work happens in ``up`` and ``demo``, imported inside the commands, so other ``wafermon``
commands start as fast as before this package was installed.
"""

from __future__ import annotations

import contextlib
import sys

import click


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
    from wafermon_hosts.common.auth import is_loopback

    from .up import Ports, Stack

    if not is_loopback(host):
        raise click.UsageError(
            f"--host {host} is not loopback: `wafermon up` is the zero-config developer stack "
            "and runs without tokens, so it listens on 127.0.0.1 only; to serve a network, run "
            "the hosts with tokens and TLS (docs/security.md)"
        )

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
@click.option(
    "--stdout",
    "to_stdout",
    is_flag=True,
    help="Print the --history lots as NDJSON instead of sending them (no sidecar; pipe them "
    "into `wafermon emit`).",
)
def demo(
    sidecar: str,
    token: str | None,
    site_id: str,
    history: int,
    live: bool,
    seed: int | None,
    to_stdout: bool,
) -> None:
    """Feed realistic wafer jobs (lots with wafers) to a sidecar, live until Ctrl-C."""
    from wafermon import encode_ndjson

    from .demo import DemoFeeder

    if to_stdout:
        printer = DemoFeeder(sidecar, site_id=site_id, seed=seed, use_sdk=False)
        for lot in printer.past_lots(history):
            sys.stdout.buffer.write(encode_ndjson(lot))
        printer.close()
        return
    feeder = DemoFeeder(sidecar, site_id=site_id, token=token, seed=seed)
    sent = feeder.burst(history)
    click.echo(f"sent {sent} events for {history} finished lots to {sidecar}", err=True)
    if live:
        click.echo("starting live lots; Ctrl-C stops", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            feeder.run_forever()
    click.echo(f"{feeder.summary()}", err=True)
