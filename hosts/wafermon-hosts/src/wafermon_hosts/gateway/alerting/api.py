"""HTTP API of the alert engine: /v1/alerts, /v1/monitors, /v1/silences.

Reads need the read scope; PUT/DELETE of monitors and POST/DELETE of silences need admin
(``scope_of`` in ``gateway.app``). Bodies are bounded (``common.limits.read_body``) and
checked field by field; a fault is a 400 naming the field.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from wafermon import Problem
from wafermon.config import make_config_converter
from wafermon.errors import explain

from ...common.bodies import BodyResponse, decode_request, request_problem
from ...common.errors import ApiError, bad_parameter
from ...common.limits import read_body
from ...common.openapi import error, json_content, json_request, path_param, query_param, ref
from ...common.openapi import operation as _operation
from ..params import Params
from .bodies import (
    Alert,
    AlertPage,
    Monitor,
    MonitorList,
    MonitorRequest,
    Silence,
    SilenceList,
    SilenceRequest,
)
from .settings import SEVERITIES, MonitorSpec

MAX_BODY = 64 * 1024
MAX_LIMIT = 1000
ERRORS = {"400": error("A parameter or field is invalid; problems[].path names it.")}
NOT_ENABLED = {"409": error("Alerting is not enabled on this gateway (gateway.alerting.enabled).")}


def _engine(request: Request) -> Any:
    engine = getattr(request.app.state.gateway, "alerting", None)
    if engine is None:
        raise ApiError(409, "alerting is not enabled on this gateway (gateway.alerting.enabled)")
    return engine


async def _json_body(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_BODY)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid JSON", [Problem("$", f"not valid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid request", [Problem("$", "expected an object")])
    return data


# -- alerts --------------------------------------------------------------------------------------


def _offset_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset})).decode().rstrip("=")


def _read_cursor(text: str | None) -> int:
    if text is None:
        return 0
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))["o"]
        if type(value) is int and value >= 0:
            return value
    except (ValueError, TypeError, KeyError):
        pass
    raise bad_parameter("cursor", "not a cursor this service issued")


ALERT_FILTERS = [
    query_param(
        "status",
        "firing (default), resolved or all.",
        {"type": "string", "enum": ["firing", "resolved", "all"]},
    ),
    query_param("site_id", "Only this site."),
    query_param("app", "Only alerts labelled with this app."),
    query_param("severity", "Only this severity.", {"type": "string", "enum": list(SEVERITIES)}),
    query_param("rule", "Only this rule."),
    query_param(
        "since",
        "Only alerts firing at or ended after this ISO 8601 time.",
        {"type": "string", "format": "date-time"},
    ),
    query_param(
        "limit", "Page size (default 100).", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    ),
    query_param("cursor", "next_cursor of the previous page."),
]


@_operation(
    "listAlerts",
    "Alerts, firing first then newest, with their notification attempts.",
    {"200": json_content(ref("AlertPage"), "A page of alerts."), **ERRORS, **NOT_ENABLED},
    parameters=ALERT_FILTERS,
)
async def list_alerts(request: Request) -> Response:
    engine = _engine(request)
    allowed = {"status", "site_id", "app", "severity", "rule", "since", "limit", "cursor"}
    params = Params(request, allowed)
    status = params.choice("status", ("firing", "resolved", "all"), "firing")
    filters = {k: v for k in ("site_id", "severity", "rule") if (v := params.text(k)) is not None}
    params.choice("severity", SEVERITIES)
    app = params.text("app")
    limit = params.integer("limit", 100, 1, MAX_LIMIT)
    offset = _read_cursor(params.text("cursor"))
    found = await engine.state.list_alerts(
        status=None if status == "all" else status,
        filters=filters,
        since=params.time("since"),
        limit=limit + 1,
        offset=offset,
    )
    if app is not None:  # app is a label: filtered here (pages may come out short)
        found = [a for a in found if a["labels"].get("app") == app]
    more = len(found) > limit
    return BodyResponse(
        AlertPage(
            alerts=[Alert.of(a) for a in found[:limit]],
            next_cursor=_offset_cursor(offset + limit) if more else None,
        )
    )


@_operation(
    "getAlert",
    "One alert with its transitions and every notification attempt.",
    {
        "200": json_content(ref("Alert"), "The alert."),
        "404": error("No alert has this fingerprint."),
        **NOT_ENABLED,
    },
    parameters=[path_param("fingerprint", "The alert's fingerprint.")],
)
async def get_alert(request: Request) -> Response:
    engine = _engine(request)
    fp = request.path_params["fingerprint"]
    found = await engine.state.get_alert(fp)
    if found is None:
        raise ApiError(404, f"no alert with fingerprint {fp!r}")
    return BodyResponse(Alert.of(found))


# -- monitors ------------------------------------------------------------------------------------


def spec_from_json(data: dict[str, Any], name: str | None = None) -> MonitorSpec:
    """A MonitorSpec from a JSON body, with the config's rules (durations as ``"10m"``)."""
    data = {k: v for k, v in data.items() if k not in ("source", "state") and v is not None}
    if name is not None:
        data["name"] = name
    try:
        return make_config_converter(Path.cwd()).structure(data, MonitorSpec)
    except Exception as exc:  # noqa: BLE001 - cattrs errors, explained with paths
        problems = explain(exc, "$")
        raise ApiError(400, "invalid monitor", problems) from None


@_operation(
    "listMonitors",
    "Expected jobs with their state, last run, next expected run and recent runs.",
    {"200": json_content(ref("MonitorList"), "Every monitor."), **NOT_ENABLED},
)
async def list_monitors(request: Request) -> Response:
    engine = _engine(request)
    Params(request, set())
    views = await engine.monitor_views()
    return BodyResponse(MonitorList(monitors=[Monitor.view(result) for result in views]))


@_operation(
    "putMonitor",
    "Create or replace a monitor (source api, or sdk with ?source=sdk).",
    {
        "200": json_content(ref("Monitor"), "Replaced."),
        "201": json_content(ref("Monitor"), "Created."),
        **ERRORS,
        "409": error("Alerting is off, or a monitor of this name is in the site config."),
    },
    parameters=[
        path_param("name", "The monitor's name."),
        query_param(
            "source",
            "Who declares it: api (default) or sdk.",
            {"type": "string", "enum": ["api", "sdk"]},
        ),
    ],
    request_body=json_request(MonitorRequest),
)
async def put_monitor(request: Request) -> Response:
    engine = _engine(request)
    params = Params(request, {"source"})
    source = params.choice("source", ("api", "sdk"), "api")
    name = request.path_params["name"]
    if any(m.name == name for m in engine.settings.monitors):
        raise ApiError(409, f"monitor {name!r} is declared in the site config; change it there")
    asked = decode_request(await _json_body(request), MonitorRequest, "invalid monitor")
    spec = spec_from_json(msgspec.to_builtins(asked), name)
    created = await engine.state.put_monitor(name, spec.as_json(source), source, engine.clock.now())
    engine.wake()
    return BodyResponse(Monitor.of(spec, source), status_code=201 if created else 200)


@_operation(
    "deleteMonitor",
    "Delete a monitor created through the API or an SDK.",
    {"204": {"description": "Deleted."}, "404": error("No such API/SDK monitor."), **NOT_ENABLED},
    parameters=[path_param("name", "The monitor's name.")],
)
async def delete_monitor(request: Request) -> Response:
    engine = _engine(request)
    name = request.path_params["name"]
    if not await engine.state.delete_monitor(name):
        raise ApiError(404, f"no API or SDK monitor named {name!r}")
    engine.wake()
    return Response(status_code=204)


# -- silences ------------------------------------------------------------------------------------


@_operation(
    "listSilences",
    "Silences, newest first, with whether each is active now.",
    {"200": json_content(ref("SilenceList"), "Every silence."), **NOT_ENABLED},
)
async def list_silences(request: Request) -> Response:
    engine = _engine(request)
    Params(request, set())
    now = engine.clock.now()
    found = await engine.state.silences()
    return BodyResponse(SilenceList(silences=[Silence.of(s, now) for s in found]))


def _silence_from(data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The silence of a body: decoded as ``SilenceRequest``; every fault is listed, the
    Struct's and the checks it cannot express (times, durations, expiry)."""
    problems: list[Problem] = []
    typed: Problem | None = None
    try:
        asked: SilenceRequest | None = msgspec.convert(data, SilenceRequest)
    except msgspec.ValidationError as exc:
        asked, typed = None, request_problem(exc)
    known = SilenceRequest.__struct_fields__
    problems += [Problem(f"$.{k}", "unknown field") for k in data if k not in known]
    matchers = data.get("matchers")
    if (
        not isinstance(matchers, dict)
        or not matchers
        or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in matchers.items())
    ):
        problems.append(Problem("$.matchers", "expected a non-empty object of label: pattern"))
    for key in ("author", "reason"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            problems.append(Problem(f"$.{key}", "required, a non-empty string"))
    times: dict[str, datetime] = {}
    for key in ("starts_at", "ends_at"):
        if data.get(key) is not None:
            try:
                value = datetime.fromisoformat(str(data[key]))
                times[key] = value if value.tzinfo else value.replace(tzinfo=now.tzinfo)
            except ValueError:
                problems.append(Problem(f"$.{key}", "expected an ISO 8601 time"))
    starts = times.get("starts_at", now)
    ends = times.get("ends_at")
    if ends is None and data.get("duration") is not None:
        from wafermon.config import parse_seconds

        try:
            ends = starts + timedelta(seconds=parse_seconds(data["duration"]))
        except ValueError as exc:
            problems.append(Problem("$.duration", str(exc)))
        except OverflowError:  # a duration past the year 9999 (found by the fuzz test)
            problems.append(Problem("$.duration", "too long: the silence would end after 9999"))
    if ends is None and not any(p.path in ("$.ends_at", "$.duration") for p in problems):
        problems.append(Problem("$.ends_at", "set ends_at or duration: a silence must expire"))
    elif ends is not None and ends <= starts:
        problems.append(Problem("$.ends_at", "must be after starts_at"))
    if typed is not None and all(p.path != typed.path for p in problems):
        problems.append(typed)  # what only the Struct refuses (one fault: msgspec stops there)
    if problems or asked is None:
        raise ApiError(400, "invalid silence", problems)
    return {
        "id": uuid.uuid4().hex,
        "matchers": asked.matchers,
        "author": asked.author.strip(),
        "reason": asked.reason.strip(),
        "starts_at": starts,
        "ends_at": ends,
    }


@_operation(
    "createSilence",
    "Silence the alerts whose labels match (rule, severity, site_id, app, monitor, ...).",
    {"201": json_content(ref("Silence"), "The silence."), **ERRORS, **NOT_ENABLED},
    request_body=json_request(SilenceRequest),
)
async def create_silence(request: Request) -> Response:
    engine = _engine(request)
    now = engine.clock.now()
    silence = _silence_from(await _json_body(request), now)
    await engine.state.add_silence(silence)
    engine.wake()
    return BodyResponse(Silence.of(silence, now), status_code=201)


@_operation(
    "expireSilence",
    "Expire a silence now (it stays in the list, inactive).",
    {"204": {"description": "Expired."}, "404": error("No silence has this id."), **NOT_ENABLED},
    parameters=[path_param("id", "The silence's id.")],
)
async def expire_silence(request: Request) -> Response:
    engine = _engine(request)
    silence_id = request.path_params["id"]
    if not await engine.state.expire_silence(silence_id, engine.clock.now()):
        raise ApiError(404, f"no silence with id {silence_id!r}")
    engine.wake()
    return Response(status_code=204)


#: (path, handler, methods, scope) of every alerting route; gateway.app adds them.
ROUTES = [
    ("/v1/alerts", list_alerts, ["GET"], "read"),
    ("/v1/alerts/{fingerprint}", get_alert, ["GET"], "read"),
    ("/v1/monitors", list_monitors, ["GET"], "read"),
    ("/v1/monitors/{name}", put_monitor, ["PUT"], "admin"),
    ("/v1/monitors/{name}", delete_monitor, ["DELETE"], "admin"),
    ("/v1/silences", list_silences, ["GET"], "read"),
    ("/v1/silences", create_silence, ["POST"], "admin"),
    ("/v1/silences/{id}", expire_silence, ["DELETE"], "admin"),
]


_BASES = ("/v1/alerts", "/v1/monitors", "/v1/silences")


def scope_for(path: str, method: str) -> str | Literal[False] | None:
    """The scope an alerting request needs (read or admin), None for a method the path does
    not serve (a 405 for everybody, like the OpenAPI document says), False for other paths."""
    base, slash, rest = path.partition("/v1/")[2].partition("/")
    template = f"/v1/{base}" + ("/{x}" if slash else "")
    if f"/v1/{base}" not in _BASES or (slash and (not rest or "/" in rest)):
        return False
    method = "GET" if method == "HEAD" else method
    for route_path, _handler, methods, scope in ROUTES:
        same = route_path == template or (slash and route_path.startswith(f"/v1/{base}/{{"))
        if same and method in methods:
            return scope
    return None
