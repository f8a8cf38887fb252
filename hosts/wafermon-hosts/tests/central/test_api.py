"""Central's API surface: auth both ways, parameters, /v1/sites, OpenAPI, config, the command."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time

import click
import httpx
import pytest
import yaml
from starlette.routing import Route

from tests.helpers.central import (
    central_client,
    dead_url,
    job_events,
    site_gateway,
    write_central_config,
)
from tests.helpers.gateway import free_port
from wafermon import ConfigError
from wafermon.config import load_config
from wafermon_hosts.central import build_central
from wafermon_hosts.central.cli import add_commands
from wafermon_hosts.common.openapi import undocumented

CENTRAL = [sys.executable, "-m", "wafermon_hosts.central"]


# -- auth ---------------------------------------------------------------------------------------


async def test_clients_of_central_need_the_read_token_except_on_open_paths(tmp_path):
    sites = {"fab1": dead_url()}
    async with central_client(tmp_path, sites, tokens={"read": "c-read"}) as (client, _app):
        denied = await client.get("/v1/jobs")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.get("/v1/sites", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        ok = await client.get("/v1/sites", headers={"Authorization": "Bearer c-read"})
        assert ok.status_code == 200
        for path in ("/v1/healthz", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status_code in (200, 503), path


async def test_central_presents_each_sites_read_token(tmp_path, plugins):
    events = job_events("fab1", [("a", 1)])
    gateway = {"tokens": {"read": "fab1-read"}}
    async with site_gateway(tmp_path, plugins, "fab1", events, gateway=gateway) as url:
        good = {"fab1": {"url": url, "token": "fab1-read"}, "fab2": {"url": url, "token": "bad"}}
        async with central_client(tmp_path, good) as (client, _app):
            body = (await client.get("/v1/jobs")).json()
    assert [i["site"] for i in body["items"]] == ["fab1"]
    assert body["sites"]["fab2"]["status"] == "failed"
    assert "refused central's token (HTTP 403)" in body["sites"]["fab2"]["error"]


# -- parameters and /v1/sites -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("site=fab7", "site"),
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("since=yesterday", "since"),
        ("sort=name", "sort"),
        ("stauts=failed", "stauts"),
        ("cursor=", "cursor"),
    ],
)
async def test_bad_parameters_are_400_naming_them(tmp_path, query, param):
    async with central_client(tmp_path, {"fab1": dead_url()}) as (client, _app):
        response = await client.get(f"/v1/jobs?{query}")
    assert response.status_code == 400
    assert response.json()["problems"][0]["path"] == param


async def test_a_request_every_site_refuses_is_400_naming_the_site(tmp_path, plugins):
    async with (
        site_gateway(tmp_path, plugins, "fab1") as url,
        central_client(tmp_path, {"fab1": url, "fab2": dead_url()}) as (client, _),
    ):
        partial = await client.get("/v1/data/unified?sources=nope")
        assert partial.status_code == 200  # fab2 did not answer: it might have it
        only = await client.get("/v1/data/unified?sources=nope&site=fab1")
        assert only.status_code == 400
        assert only.json()["error"].startswith("site fab1: invalid parameter 'sources'")
        assert only.json()["problems"][0]["path"] == "sources"
        bad_cursor = await client.get("/v1/data/unified?cursor=xyz")
        assert bad_cursor.status_code == 400


async def test_sites_lists_names_urls_and_timeouts_but_no_tokens(tmp_path):
    sites = {"fab1": {"url": "http://127.0.0.1:1/", "token": "s3cret", "timeout": "250ms"}}
    async with central_client(tmp_path, sites) as (client, _app):
        body = (await client.get("/v1/sites")).json()
    assert body == {
        "site_id": "central",
        "sites": [{"name": "fab1", "url": "http://127.0.0.1:1", "timeout_s": 0.25}],
    }
    assert "s3cret" not in json.dumps(body)


# -- OpenAPI --------------------------------------------------------------------------------------


async def test_every_route_is_described_and_open_paths_need_no_auth(tmp_path):
    async with central_client(tmp_path, {"fab1": dead_url()}) as (client, app):
        doc = (await client.get("/openapi.json")).json()
    described = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    served = {
        (re.sub(r":\w+}", "}", r.path), m)
        for r in app.routes
        if isinstance(r, Route)
        for m in r.methods - {"HEAD"}
    }
    assert described == served
    assert undocumented(doc) == [], "declare these handlers' docs with @operation"
    open_ops = {p for p, ops in doc["paths"].items() if ops["get"]["security"] == []}
    assert open_ops == {"/v1/healthz", "/metrics", "/openapi.json"}
    refs = {
        m.removeprefix("#/components/schemas/")
        for m in _refs(doc["paths"]) | _refs(doc["components"]["schemas"])
    }
    assert refs <= set(doc["components"]["schemas"])


def _refs(node) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


# -- config -------------------------------------------------------------------------------------


def test_config_problems_are_listed_with_lines(tmp_path):
    path = tmp_path / "central.yaml"
    path.write_text(
        "site_id: central\n"
        "central:\n"
        "  listen: nowhere\n"
        "  cache_ttl: -1\n"
        "  sites:\n"
        "    - {name: fab1, url: 'ftp://x'}\n"
        "    - {name: 'Fab 2', url: 'http://x'}\n"
    )
    with pytest.raises(ConfigError) as info:
        build_central(load_config(path))
    problems = {p.path: p for p in info.value.problems}
    assert set(problems) >= {"central.cache_ttl", "central.sites[0].url", "central.sites[1].name"}
    assert problems["central.sites[0].url"].line == 6


def test_a_config_without_central_or_sites_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("site_id: central\n")
    with pytest.raises(ConfigError, match="central"):
        build_central(load_config(path))
    path.write_text("site_id: central\ncentral: {sites: []}\n")
    with pytest.raises(ConfigError) as info:
        build_central(load_config(path))
    assert info.value.problems[0].path == "central.sites"


def test_add_commands_adds_wafermon_central():
    group = click.Group("wafermon")
    add_commands(group)
    assert "central" in group.commands


# -- the real process ---------------------------------------------------------------------------


def test_check_and_a_real_process_that_stops_on_sigterm(tmp_path, plugins):
    config = write_central_config(tmp_path, {"fab1": dead_url()})
    check = subprocess.run([*CENTRAL, "-c", str(config), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "central would serve http://127.0.0.1:19000 for 1 site(s): fab1" in check.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"site_id": "central", "central": {"sites": [{"name": "x"}]}}))
    refused = subprocess.run([*CENTRAL, "-c", str(bad)], capture_output=True, text=True)
    assert refused.returncode == 1
    assert "central.sites[0].url" in refused.stderr

    port = free_port()
    proc = subprocess.Popen(
        [*CENTRAL, "-c", str(config), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read()
            with contextlib.suppress(httpx.TransportError):
                health = httpx.get(f"http://127.0.0.1:{port}/v1/healthz")
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert health.status_code == 503
        assert health.json()["sites"]["fab1"]["reachable"] is False
        jobs = httpx.get(f"http://127.0.0.1:{port}/v1/jobs").json()
        assert jobs["sites"]["fab1"]["status"] == "failed"
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = [entry["event"] for entry in logs]
    assert "central started" in events
    assert "central stopped" in events
    assert any(e.get("path") == "/v1/jobs" and e.get("status") == 200 for e in logs)
