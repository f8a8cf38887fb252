"""GET /v1/alerts on central: every site's alerts merged, firing first then newest.

Each site is asked for one page from its own place (the composite cursor keeps an offset per
site); the merged page takes the first ``limit`` in the gateway's order and each site's offset
moves by what it contributed. Every alert keeps its ``site_id`` and gains ``site`` (the
configured name), and ``sites`` reports each site's status as the other merged lists do.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..common.bodies import BodyResponse
from ..common.errors import bad_parameter
from ..common.openapi import json_content, operation, ref
from ..gateway.alerting.api import ALERT_FILTERS, MAX_LIMIT, _offset_cursor
from ..gateway.params import Params
from .bodies import MergedAlertPage, SiteStatus
from .openapi import COMMON_ERRORS, SITE
from .routes import _all_rejected, _central, _checked, _note_partial, _refresh, _sites

FORWARD = ("status", "site_id", "app", "severity", "rule", "since")


def _decode(cursor: str | None, names: list[str]) -> dict[str, int | None]:
    if cursor is None:
        return dict.fromkeys(names, 0)
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offsets = {n: raw[n] for n in names}
        if all(o is None or (type(o) is int and o >= 0) for o in offsets.values()):
            return offsets
    except (ValueError, TypeError, KeyError):
        pass
    raise bad_parameter("cursor", "not a cursor this service issued for these sites")


def _encode(offsets: dict[str, int | None]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(offsets)).decode().rstrip("=")


def _page_ok(body: Any) -> None:
    for alert in body["alerts"]:
        _order(alert)


def _order(alert: dict[str, Any]) -> tuple[int, float, str]:
    """The gateway's order as a sort key: firing first, then newest start."""
    started = datetime.fromisoformat(alert["starts_at"].replace("Z", "+00:00")).timestamp()
    return (0 if alert["status"] == "firing" else 1, -started, alert["fingerprint"])


@operation(
    "alerts",
    "Alerts of one, several or all sites, merged: firing first, then newest.",
    {
        "200": json_content(ref("MergedAlertPage"), "One merged page and each site's status."),
        **COMMON_ERRORS,
    },
    parameters=[*[p for p in ALERT_FILTERS], SITE],
)
async def alerts(request: Request) -> Response:
    central = _central(request)
    params = Params(request, {*FORWARD, "site", "limit", "cursor"})
    names = _sites(central, params)
    limit = params.integer("limit", 100, 1, MAX_LIMIT)
    offsets = _decode(params.text("cursor"), names)
    forward = [(k, v) for k in FORWARD if (v := params.values.get(k)) is not None]
    asked = {
        n: ("/v1/alerts", [*forward, ("limit", str(limit)), ("cursor", _offset_cursor(o))])
        for n, o in offsets.items()
        if o is not None
    }
    got = await central.fan_out(asked, refresh=_refresh(request))
    got = {n: _checked(a, _page_ok) for n, a in got.items()}
    _all_rejected(got)
    merged = [
        (_order(alert), n, alert)
        for n, a in got.items()
        if a.status == "ok"
        for alert in a.body["alerts"]
    ]
    merged.sort(key=lambda item: (item[0], item[1]))
    picked = merged[:limit]
    counts = dict.fromkeys(got, 0)
    for _key, n, _alert in picked:
        counts[n] += 1
    new_offsets: dict[str, int | None] = dict(offsets)
    for n, a in got.items():
        if a.status != "ok":
            continue  # keeps its place
        current = offsets[n] or 0
        exhausted = a.body.get("next_cursor") is None and counts[n] == len(a.body["alerts"])
        new_offsets[n] = None if exhausted else current + counts[n]
    more = any(o is not None for o in new_offsets.values())
    _note_partial(central, "/v1/alerts", got)
    summaries = {
        n: got[n].summary(count=counts.get(n, 0))
        if n in got
        else SiteStatus(status="done", count=0)
        for n in names
    }
    return BodyResponse(
        MergedAlertPage(
            alerts=[{**alert, "site": n} for _key, n, alert in picked],
            next_cursor=_encode(new_offsets) if more else None,
            sites=summaries,
        )
    )
