"""The Dash app: a header with the views, one page container routed by URL path.

| path         | view                                                        |
|--------------|-------------------------------------------------------------|
| `/`          | live counts and throughput (``views.live``)                 |
| `/jobs`      | job list: filters, search, pages (``views.jobs``)           |
| `/job/<id>`  | one job: subjob Gantt, duration / CPU / memory (``views.detail``) |
| `/history`   | unified events with a source picker (``views.history``)    |
| `/sites`     | multi-site comparison, central only (``views.sites``)      |
| `/trends`    | metric trends of a trend source (``views.trends``)         |
| `/alerts`    | firing alerts first, history, silences (``views.alerts``)  |
| `/monitors`  | expected jobs: state, last and next run, recent runs (``views.monitors``) |
| `/health`    | gateway/central and sidecar health, metrics (``views.health``) |

The app holds no data: every callback asks the gateway or central over HTTP (``client.Api``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import attrs
from dash import Dash, Input, Output, State, dcc, html

from wafermon import Secret

from . import __version__
from .client import Api, ApiError, Sidecar
from .views import alerts, detail, health, history, jobs, live, monitors, sites, trends

NAV = [("/", "Live"), ("/alerts", "Alerts"), ("/monitors", "Monitors"), ("/jobs", "Jobs"),
       ("/history", "History"), ("/trends", "Trends"), ("/sites", "Sites"),
       ("/health", "Health")]  # fmt: skip
CENTRAL_ONLY = {"/sites"}
SITES_TTL = 30.0


@attrs.define
class Context:
    """What the views share: the API, the optional sidecar and the display settings."""

    api: Api
    sidecar: Sidecar | None = None
    refresh_s: float = 5.0
    count_cap: int = 1000
    login: bool = False  # pages need a signed-in session (``login``)
    admin_token: Secret | None = None  # posts silences without sign-in (``admin``)
    _sites: tuple[float, list[str]] | None = None

    def sites(self) -> list[str]:
        """Central's site names (kept for SITES_TTL seconds); [] for a gateway or on error."""
        if not self.api.central:
            return []
        if self._sites is None or time.monotonic() - self._sites[0] > SITES_TTL:
            try:
                self._sites = (time.monotonic(), self.api.sites())
            except ApiError:
                return []
        return self._sites[1]


def _header(ctx: Context) -> html.Header:
    mode = "central" if ctx.api.central else "gateway"
    links = [dcc.Link(label, href=href, className="nav-link", id=f"nav-{label.lower()}")
             for href, label in NAV if href not in CENTRAL_ONLY or ctx.api.central]  # fmt: skip
    return html.Header(
        [
            html.Div([html.Span("wafermon", className="brand"),
                      html.Span(f"{mode} {ctx.api.shown_url}", className="target")]),
            html.Nav(links + ([html.A("Sign out", href="/logout", className="nav-link",
                                      id="nav-signout")] if ctx.login else [])),
        ],
        className="header",
    )  # fmt: skip


def page(ctx: Context, pathname: str | None, search: str | None) -> Any:
    query = dict(parse_qsl((search or "").lstrip("?")))
    path = (pathname or "/").rstrip("/") or "/"
    if path == "/":
        return live.layout(ctx, query)
    if path == "/jobs":
        return jobs.layout(ctx, query)
    if path.startswith("/job/"):
        return detail.layout(ctx, unquote(path.removeprefix("/job/")), query)
    if path == "/history":
        return history.layout(ctx, query)
    if path == "/sites":
        return sites.layout(ctx, query)
    if path == "/trends":
        return trends.layout(ctx, query)
    if path == "/alerts":
        return alerts.layout(ctx, query)
    if path == "/monitors":
        return monitors.layout(ctx, query)
    if path == "/health":
        return health.layout(ctx, query)
    return html.Div([html.H2("Not found"), dcc.Link("Back to the live view", href="/")])


def create_app(ctx: Context) -> Dash:
    app = Dash(
        __name__,
        title="wafermon",
        update_title=None,
        suppress_callback_exceptions=True,
        assets_folder=str(Path(__file__).parent / "assets"),
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            _header(ctx),
            html.Main(id="page", className="page"),
            html.Footer(f"wafermon-dashboard {__version__}", className="footer"),
        ]
    )

    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def route(pathname: str | None, search: str | None) -> Any:
        return page(ctx, pathname, search)

    for view in (live, alerts, monitors, jobs, history, trends, sites, health):
        view.register(app, ctx)
    app.server.config["wafermon_context"] = ctx

    @app.server.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
