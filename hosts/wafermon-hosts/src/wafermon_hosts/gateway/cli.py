"""``wafermon gateway``: load the site config and plugins, then serve (or just ``--check``)."""

from __future__ import annotations

from ..common.cli import Loaded, host_command


def _load(config, plugins, listen: str | None) -> Loaded:
    from .app import SERVED_SCOPES, create_app, load_gateway

    gw = load_gateway(config, plugins, listen=listen)
    return Loaded(
        host=gw,
        create_app=lambda: create_app(gw),
        identity=f"site {gw.site_id}",
        serves=f"with store {gw.store.name} ({gw.store_type}), sources: "
        + (", ".join(gw.sources) or "none")
        + "".join(f", stream {n} ({type(r.consumer).__name__})" for n, r in gw.streams.items()),
        served=SERVED_SCOPES,
        log_fields={"site_id": gw.site_id},
        on_stop=[gw.stream.close],
    )


gateway = host_command(
    "gateway",
    "Run the site gateway: managed store, external sources, unified view (HTTP API).",
    _load,
    check_help="Validate the config and plugins, then exit.",
)
