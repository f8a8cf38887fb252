"""Hot routes served without Starlette's router (common/direct.py): the same answers, errors
and 405s as through the router, the observer's route template, and nothing else taken over."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wafermon import Problem
from wafermon_hosts.common.direct import DirectRoutes
from wafermon_hosts.common.errors import EXCEPTION_HANDLERS, ApiError


async def hot(request: Request) -> JSONResponse:
    kind = request.query_params.get("fail")
    if kind == "api":
        raise ApiError(415, "unsupported Content-Type", [Problem("$", "send JSON")])
    if kind == "http":
        raise HTTPException(409, "busy")
    if kind == "bug":
        raise RuntimeError("a bug")
    body = await request.body()
    # Starlette's router records itself in the scope; a direct request never meets it.
    return JSONResponse({"via_router": "router" in request.scope, "bytes": len(body)})


async def cold(request: Request) -> JSONResponse:
    return JSONResponse({"via_router": "router" in request.scope})


def app() -> Starlette:
    routes = [Route("/hot", hot, methods=["POST"]), Route("/cold", cold, methods=["GET"])]
    return Starlette(
        routes=routes,
        middleware=[Middleware(DirectRoutes, routes=routes[:1])],
        exception_handlers=EXCEPTION_HANDLERS,
    )


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_a_direct_route_skips_the_router_and_others_do_not(client):
    hot_answer = await client.post("/hot", content=b"12345")
    cold_answer = await client.get("/cold")
    assert hot_answer.json() == {"via_router": False, "bytes": 5}
    assert cold_answer.json() == {"via_router": True}


async def test_errors_of_a_direct_route_get_the_usual_json_answers(client):
    api = await client.post("/hot?fail=api")
    http = await client.post("/hot?fail=http")
    bug = await client.post("/hot?fail=bug")
    assert (api.status_code, api.json()) == (
        415,
        {"error": "unsupported Content-Type", "problems": [{"path": "$", "message": "send JSON"}]},
    )
    assert (http.status_code, http.json()) == (409, {"error": "busy"})
    assert bug.status_code == 500  # left to the layers outside: in a host, the observer


async def test_another_method_on_a_direct_path_goes_to_the_router(client):
    answer = await client.get("/hot")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.json() == {"error": "Method Not Allowed"}


def test_a_path_with_parameters_is_refused():
    with pytest.raises(ValueError, match="exact path"):
        DirectRoutes(app(), routes=[Route("/jobs/{id}", cold, methods=["GET"])])
