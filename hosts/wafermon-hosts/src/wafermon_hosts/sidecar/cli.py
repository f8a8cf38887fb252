"""``wafermon sidecar``: load the site config and plugins, then serve (or just ``--check``)."""

from __future__ import annotations

from ..common.cli import Loaded, host_command


def _load(config, plugins, listen: str | None) -> Loaded:
    from .app import SERVED_SCOPES, create_app, load_sidecar

    sc = load_sidecar(config, plugins, listen=listen)
    routes = ", ".join(
        f"{r.name} ({sc.types[r.name]}"
        + (f", fallback {r.fallback.name}" if r.fallback else "")
        + ")"
        for r in sc.routes
    )
    return Loaded(
        host=sc,
        create_app=lambda: create_app(sc),
        identity=f"site {sc.site_id}",
        serves=f"with spool {sc.spool_dir} (cap {sc.settings.spool.max_bytes} bytes), "
        f"backends: {routes}",
        served=SERVED_SCOPES,
        log_fields={"site_id": sc.site_id},
        on_stop=[sc.stop_accepting],
    )


sidecar = host_command(
    "sidecar",
    "Run the node sidecar: durable spool, delivery to every backend (HTTP API).",
    _load,
    check_help="Validate the config and plugins, then exit.",
)
