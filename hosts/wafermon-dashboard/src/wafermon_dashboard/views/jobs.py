"""The job list: filters, search and pagination, all done by the server (one page per request).

Filters map to the API's own parameters (status, app, business_key, since, sort, site), and
pages follow the API's ``next_cursor``; a stack of cursors in the browser goes back. Search
takes a job id (an exact lookup) or a lot / business key (a filter).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dash import Input, Output, State, dcc, html
from dash import ctx as dash_ctx

from ..client import ApiError, iso
from ..ui import (
    DASH,
    WINDOWS,
    badge,
    dropdown,
    error_box,
    fmt_duration,
    fmt_number,
    fmt_time,
    job_link,
    labelled,
    missing_sites,
    note,
    now,
    table,
)

STATUS_OPTIONS = {"any status": "", "running": "running", "finished": "finished",
                  "failed": "failed"}  # fmt: skip
RANGE_OPTIONS = {"any time": 0} | WINDOWS
SORT_OPTIONS = {"newest first": "-start_time", "oldest first": "start_time",
                "recently updated": "-updated_at"}  # fmt: skip
SIZES = [25, 50, 100]


def filters_from(query: dict[str, str]) -> dict[str, Any]:
    return {
        "status": query.get("status", "") if query.get("status") in STATUS_OPTIONS.values() else "",
        "app": query.get("app", ""),
        "search": query.get("q", ""),
        "range": int(query["range"]) if query.get("range", "").isdigit() else 0,
        "sort": query.get("sort") if query.get("sort") in SORT_OPTIONS.values() else "-start_time",
        "site": query.get("site", ""),
        "size": int(query["size"]) if query.get("size", "").isdigit() else 50,
    }


def fetch(ctx: Any, f: dict[str, Any], cursor: str | None) -> tuple[list[dict], str | None, Any]:
    """(items, next cursor, notice) for one page of the list under filters ``f``."""
    params: dict[str, Any] = {
        "status": f["status"] or None,
        "app": (f["app"] or "").strip() or None,
        "sort": f["sort"],
        "limit": f["size"],
        "cursor": cursor,
    }
    if f["range"]:
        params["since"] = iso(now() - timedelta(seconds=f["range"]))
    if ctx.api.central and f["site"]:
        params["site"] = f["site"]
    search = (f["search"] or "").strip()
    if search:
        found = ctx.api.job(search, site=f["site"] or None)
        if found is not None and found["job"]["entity_type"] == "job":
            item = {**found["job"], **({"site": found["site"]} if "site" in found else {})}
            return [item], None, note(f"Job {search}")
        params["business_key"] = search
    body = ctx.api.jobs(**params)
    return body["items"], body.get("next_cursor"), missing_sites(body)


def render(ctx: Any, items: list[dict[str, Any]]) -> Any:
    if not items:
        return note("No jobs match these filters.")
    central = ctx.api.central
    headers = ["Job", *(["Site"] if central else []), "Lot", "App", "Status", "Started",
               "Duration", "Progress", "CPU (s)", "Max mem (MB)"]  # fmt: skip
    rows = [
        [
            job_link(i),
            *([i.get("site", "")] if central else []),
            i.get("business_key") or "",
            i["app"],
            badge(i["status"]),
            fmt_time(i["start_time"]),
            fmt_duration(i.get("duration_s")),
            DASH if i.get("progress") is None else f"{i['progress'] * 100:.0f} %",
            fmt_number(i.get("cpu_user_s")),
            fmt_number(i.get("mem_max_mb"), digits=0),
        ]
        for i in items
    ]
    return table(headers, rows, id="jobs-rows")


def page_info(page: int, count: int) -> str:
    return f"page {page} · {count} job{'s' if count != 1 else ''} on this page"


def layout(ctx: Any, query: dict[str, str]) -> html.Div:
    f = filters_from(query)
    try:
        items, next_cursor, notice = fetch(ctx, f, None)
        body, error = render(ctx, items), notice
    except ApiError as exc:
        items, next_cursor, body, error = [], None, None, error_box(str(exc))
    site_options = {"all sites": ""} | {s: s for s in ctx.sites()}
    return html.Div(
        [
            html.H2("Jobs"),
            html.Div(
                [
                    labelled("Status", dropdown("jobs-status", STATUS_OPTIONS, f["status"])),
                    labelled(
                        "App",
                        dcc.Input(
                            id="jobs-app",
                            value=f["app"],
                            debounce=True,
                            placeholder="application",
                            type="text",
                        ),
                    ),
                    labelled(
                        "Search",
                        dcc.Input(
                            id="jobs-search",
                            value=f["search"],
                            debounce=True,
                            placeholder="job id or lot",
                            type="search",
                        ),
                    ),
                    labelled("Started", dropdown("jobs-range", RANGE_OPTIONS, f["range"])),
                    labelled("Order", dropdown("jobs-sort", SORT_OPTIONS, f["sort"])),
                    labelled(
                        "Site",
                        dropdown("jobs-site", site_options, f["site"]),
                        cls="" if ctx.api.central else "hidden",
                    ),
                    labelled("Per page", dropdown("jobs-size", SIZES, f["size"])),
                ],
                className="controls",
            ),
            html.Div(error, id="jobs-error"),
            html.Div(body, id="jobs-table"),
            html.Div(
                [
                    html.Button("\u2039 Previous", id="jobs-prev", disabled=True, n_clicks=0),
                    html.Span(page_info(1, len(items)), id="jobs-info", className="muted"),
                    html.Button(
                        "Next \u203a", id="jobs-next", disabled=next_cursor is None, n_clicks=0
                    ),
                ],
                className="pager",
            ),
            dcc.Store(id="jobs-cursors", data={"stack": [None], "next": next_cursor}),
        ]
    )


def register(app: Any, ctx: Any) -> None:
    @app.callback(
        Output("jobs-table", "children"),
        Output("jobs-error", "children"),
        Output("jobs-info", "children"),
        Output("jobs-cursors", "data"),
        Output("jobs-prev", "disabled"),
        Output("jobs-next", "disabled"),
        Input("jobs-status", "value"),
        Input("jobs-app", "value"),
        Input("jobs-search", "value"),
        Input("jobs-range", "value"),
        Input("jobs-sort", "value"),
        Input("jobs-site", "value"),
        Input("jobs-size", "value"),
        Input("jobs-prev", "n_clicks"),
        Input("jobs-next", "n_clicks"),
        State("jobs-cursors", "data"),
        prevent_initial_call=True,
    )
    def update(status, app_name, search, range_s, sort, site, size, _prev, _next, cursors):
        f = {"status": status, "app": app_name, "search": search, "range": range_s,
             "sort": sort, "site": site, "size": size}  # fmt: skip
        stack = list((cursors or {}).get("stack") or [None])
        trigger = dash_ctx.triggered_id
        if trigger == "jobs-next" and cursors.get("next"):
            stack.append(cursors["next"])
        elif trigger == "jobs-prev" and len(stack) > 1:
            stack.pop()
        elif trigger not in ("jobs-next", "jobs-prev"):
            stack = [None]  # a filter changed: back to the first page
        try:
            items, next_cursor, notice = fetch(ctx, f, stack[-1])
        except ApiError as exc:
            data = {"stack": stack, "next": None}
            return None, error_box(str(exc)), "", data, len(stack) == 1, True
        data = {"stack": stack, "next": next_cursor}
        info = page_info(len(stack), len(items))
        return render(ctx, items), notice, info, data, len(stack) == 1, next_cursor is None
