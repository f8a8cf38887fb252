"""``wafermon central``: load the central config, then serve (or just ``--check``).

``add_commands(cli)`` adds the command to the ``wafermon`` group; the hosts' plugin module
calls it from its ``register_commands`` hook.
"""

from __future__ import annotations

import click

from ..common.cli import Loaded, host_command


def _load(config, plugins, listen: str | None) -> Loaded:
    from .app import SERVED_SCOPES, create_app, load_central

    host = load_central(config, plugins, listen=listen)
    sites = host.settings.sites
    return Loaded(
        host=host,
        create_app=lambda: create_app(host),
        identity=f"central {host.site_id}",
        serves=f"for {len(sites)} site(s): " + ", ".join(f"{s.name} ({s.url})" for s in sites),
        served=SERVED_SCOPES,
        log_fields={"sites": host.site_names},
        warnings=host.settings.warnings(),
    )


central = host_command(
    "central",
    "Run the central host: many sites' gateways behind one API (HTTP).",
    _load,
    check_help="Validate the config, then exit.",
)


def add_commands(cli: click.Group) -> None:
    """Add ``wafermon central`` to the ``wafermon`` CLI group."""
    cli.add_command(central)
