"""``wafermon dashboard`` (``wafermon up`` and ``wafermon demo`` are wafermon-stack's).

Heavy imports (Dash, plotly, Hypercorn) happen inside the command, so other ``wafermon``
commands start as fast as before this package was installed.
"""

from __future__ import annotations

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
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True),
    help="Read the token from this file instead (its trailing newline is dropped).",
)
@click.option(
    "--sidecar-token",
    envvar="WAFERMON_SIDECAR_READ_TOKEN",
    help="Read token of the sidecar, for its health details (env WAFERMON_SIDECAR_READ_TOKEN).",
)
@click.option(
    "--admin-token",
    envvar="WAFERMON_DASHBOARD_ADMIN_TOKEN",
    help="Admin token of the gateway, for the Alerts view's silence form when there is no "
    "sign-in (env WAFERMON_DASHBOARD_ADMIN_TOKEN). With sign-in, whoever signs in with an "
    "admin token may silence.",
)
@click.option(
    "--login/--no-login",
    default=None,
    help="Pages need a sign-in with a read token of the gateway or central "
    "(default: on when a token is given).",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="Serve HTTPS.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, exists=True),
    help="CA bundle of a gateway or central with a private certificate.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a non-loopback --listen without sign-in (warned at every start).",
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
    token_file: str | None,
    sidecar_token: str | None,
    admin_token: str | None,
    login: bool | None,
    tls_cert: str | None,
    tls_key: str | None,
    ca_file: str | None,
    insecure: bool,
    listen: str,
    refresh_s: float,
    count_cap: int,
    log_level: str,
) -> None:
    """Serve the Dash dashboards for a gateway (one site) or a central host (all sites).

    Read-only by design. Listening on anything but loopback needs the sign-in (a read token of
    the gateway or central, see docs/security.md) unless --insecure says otherwise.
    """
    from pathlib import Path

    from wafermon import Secret, strip_credentials
    from wafermon_hosts.common.auth import is_loopback
    from wafermon_hosts.common.logs import configure_logging, get_logger
    from wafermon_hosts.common.serve import parse_listen

    from .serve import build, serve

    if (gateway is None) == (central is None):
        raise click.UsageError("give exactly one of --gateway URL or --central URL")
    try:
        host, _port = parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--listen") from None
    if token_file is not None:
        token = Path(token_file).read_text(encoding="utf-8").rstrip("\r\n")
        if not token.strip():
            raise click.BadParameter(f"{token_file} is empty", param_hint="--token-file")
    named = (("--token", token), ("--sidecar-token", sidecar_token), ("--admin-token", admin_token))
    for name, value in named:
        if value is not None and not value.strip():
            raise click.BadParameter(
                "must not be empty or whitespace (an unset or empty variable?)", param_hint=name
            )
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together")
    login = bool(token) if login is None else login
    exposed = not is_loopback(host)
    if exposed and not login and not insecure:
        raise click.UsageError(
            f"--listen {listen} is not loopback and the dashboard would show the site's data to "
            "anyone: give --token (or --token-file) so pages need a sign-in, listen on "
            "127.0.0.1, or pass --insecure to accept that on purpose"
        )
    if admin_token and login:
        raise click.UsageError(
            "--admin-token is for a dashboard without sign-in; with sign-in, admins sign in "
            "with their own admin token"
        )
    configure_logging(log_level.upper())
    log = get_logger("wafermon_dashboard")
    app = build(
        gateway=gateway,
        central=central,
        sidecar=sidecar,
        token=Secret(token) if token else None,
        sidecar_token=Secret(sidecar_token) if sidecar_token else None,
        admin_token=Secret(admin_token) if admin_token else None,
        refresh_s=refresh_s,
        count_cap=count_cap,
        login=login,
        secure_cookie=tls_cert is not None,
        ca_file=Path(ca_file) if ca_file else None,
    )
    scheme = "https" if tls_cert else "http"
    log.info(
        "dashboard starting",
        listen=listen,
        scheme=scheme,
        login=login,
        gateway=strip_credentials(gateway or ""),
        central=strip_credentials(central or ""),
    )
    if exposed and not login:
        log.warning(f"dashboard: --insecure: pages on {listen} need no sign-in")
    if exposed and login and tls_cert is None:
        log.warning("dashboard: sign-in over plain HTTP on a non-loopback address: use TLS")
    click.echo(f"wafermon dashboard on {scheme}://{listen}/", err=True)
    serve(
        app,
        listen,
        certfile=Path(tls_cert) if tls_cert else None,
        keyfile=Path(tls_key) if tls_key else None,
    )
    log.info("dashboard exited")
