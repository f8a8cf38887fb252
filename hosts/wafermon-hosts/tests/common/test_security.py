"""Secure by default, across every host: the route x token table, fail-closed starts, health
that reveals nothing to strangers, checks that cost nothing per scrape, bounded labels, and no
secret value in any log line, health answer, metrics page or error answer.

The hosts run on real Hypercorn sockets (the stream route needs a real connection); central
reads the real gateway of the same test.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import yaml

import wafermon_backend_gateway.plugin
from tests.helpers.central import serve_app, write_central_config
from tests.helpers.sidecar import free_port, metric
from wafermon import Health, Query, QueryAdapter, QueryResult, encode_array, hookimpl
from wafermon.config import load_config
from wafermon_hosts.central import create_app as create_central_app
from wafermon_hosts.central import load_central
from wafermon_hosts.common.auth import ADMIN, INGEST, READ
from wafermon_hosts.common.logs import configure_logging

TOKENS = {INGEST: "tok-ingest-7f3a", READ: "tok-read-91c2", ADMIN: "tok-admin-5d0e"}
WRONG = "tok-wrong-0000"
#: Any of these in a log line, a health answer, a metrics page or an error answer is a leak.
SECRETS = [*TOKENS.values(), WRONG, "hunter2-pw"]

# -- the table: every route of every host, the scope it needs and what success looks like ----
#
# A route added to a host without a row here fails test_every_route_has_an_entry.

GATEWAY = {
    ("POST", "/v1/ingest/managed"): (INGEST, 200),
    ("GET", "/v1/jobs"): (READ, 200),
    ("GET", "/v1/subjobs"): (READ, 200),
    ("GET", "/v1/jobs/{id:path}"): (READ, 404),
    ("POST", "/v1/query/external"): (READ, 200),
    ("GET", "/v1/data/unified"): (READ, 200),
    ("GET", "/v1/stream"): (READ, 200),
    ("GET", "/v1/trends"): (READ, 400),  # no trend source configured: 400 naming `source`
    ("GET", "/v1/trends/sources"): (READ, 200),
    ("GET", "/-/plugins"): (READ, 200),
    # Alerting (enabled in the fixture); a write's ok is a 400/404 for the test's body/name.
    ("GET", "/v1/alerts"): (READ, 200),
    ("GET", "/v1/alerts/{fingerprint}"): (READ, 404),
    ("GET", "/v1/monitors"): (READ, 200),
    ("PUT", "/v1/monitors/{name}"): (ADMIN, 400),
    ("DELETE", "/v1/monitors/{name}"): (ADMIN, 404),
    ("GET", "/v1/silences"): (READ, 200),
    ("POST", "/v1/silences"): (ADMIN, 400),
    ("DELETE", "/v1/silences/{id}"): (ADMIN, 404),
    ("GET", "/v1/healthz"): (None, 200),
    ("GET", "/metrics"): (None, 200),
    ("GET", "/openapi.json"): (None, 200),
}
SIDECAR = {
    ("POST", "/v1/ingest/events"): (INGEST, 202),
    ("POST", "/v1/ingest/events:batch"): (INGEST, 202),
    ("GET", "/-/plugins"): (READ, 200),
    ("GET", "/v1/healthz"): (None, 200),
    ("GET", "/metrics"): (None, 200),
    ("GET", "/openapi.json"): (None, 200),
}
CENTRAL = {
    ("GET", "/v1/sites"): (READ, 200),
    ("GET", "/v1/jobs"): (READ, 200),
    ("GET", "/v1/subjobs"): (READ, 200),
    ("GET", "/v1/jobs/{id:path}"): (READ, 404),
    ("GET", "/v1/data/unified"): (READ, 200),
    ("GET", "/v1/trends"): (READ, 400),  # no site named: 400 naming `site`
    ("GET", "/v1/trends/sources"): (READ, 200),
    ("GET", "/v1/alerts"): (READ, 200),
    ("GET", "/-/plugins"): (READ, 200),
    ("GET", "/v1/healthz"): (None, 200),
    ("GET", "/metrics"): (None, 200),
    ("GET", "/openapi.json"): (None, 200),
}
TABLE = {"gateway": GATEWAY, "sidecar": SIDECAR, "central": CENTRAL}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def routes_of(app) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        for method in (route.methods or {"GET"}) - {"HEAD"}
    }


class Hosts:
    """A gateway, a sidecar and a central host, all with a token for every scope."""

    def __init__(self, apps: dict, urls: dict) -> None:
        self.apps = apps
        self.urls = urls


@pytest.fixture
async def hosts(build_app, build_sidecar_app, tmp_path):
    tokens = dict(TOKENS)
    async with AsyncExitStack() as stack:
        gateway = build_app(gateway={"tokens": tokens, "alerting": {"enabled": True}})
        gw_url = await stack.enter_async_context(serve_app(gateway))
        sidecar = build_sidecar_app(sidecar={"tokens": tokens})
        sc_url = await stack.enter_async_context(serve_app(sidecar))
        sites = {"fab1": {"url": gw_url, "token": TOKENS[READ]}}
        central = create_central_app(
            load_central(load_config(write_central_config(tmp_path, sites, tokens=tokens)))
        )
        ct_url = await stack.enter_async_context(serve_app(central))
        yield Hosts(
            {"gateway": gateway, "sidecar": sidecar, "central": central},
            {"gateway": gw_url, "sidecar": sc_url, "central": ct_url},
        )


async def ask(
    http: httpx.AsyncClient, url: str, method: str, path: str, headers: dict, body: bytes
) -> int:
    path = path.replace("{id:path}", "lot-none")
    if path == "/v1/query/external":
        body = b'{"source": "managed", "query": {}}'
        headers = {**headers, "Content-Type": "application/json"}
    async with http.stream(method, url + path, headers=headers, content=body or None) as r:
        return r.status_code  # a stream's headers are enough: it never ends by itself


def test_every_route_has_an_entry(build_app, build_sidecar_app, tmp_path):
    sites = {"fab1": {"url": "http://127.0.0.1:1"}}
    central = create_central_app(load_central(load_config(write_central_config(tmp_path, sites))))
    apps = {"gateway": build_app(), "sidecar": build_sidecar_app(), "central": central}
    for name, app in apps.items():
        assert routes_of(app) == set(TABLE[name]), f"{name}: add the new route to TABLE"
        # The OpenAPI document says the same scope for each route as the table (and auth).
        paths = app.state.openapi["paths"]
        for (method, path), (scope, _ok) in TABLE[name].items():
            op = paths[re.sub(r":\w+}", "}", path)][method.lower()]
            assert op.get("x-wafermon-scope") == scope, (name, method, path)
            assert op["security"] == ([] if scope is None else [{"bearer": []}])


@pytest.mark.parametrize("host", list(TABLE))
async def test_exactly_the_right_cells_succeed(hosts, host, make_event):
    """Every route x {no token, wrong token, each other scope's token, the right token}."""
    assert routes_of(hosts.apps[host]) == set(TABLE[host])
    body = encode_array([make_event()])
    url = hosts.urls[host]
    async with httpx.AsyncClient(timeout=20) as http:
        for (method, path), (scope, ok) in TABLE[host].items():
            send = body if method == "POST" else b""
            got = {
                "none": await ask(http, url, method, path, {}, send),
                "wrong": await ask(http, url, method, path, bearer(WRONG), send),
            }
            for other in TOKENS:
                got[other] = await ask(http, url, method, path, bearer(TOKENS[other]), send)
            if scope is None:
                want = dict.fromkeys(got, ok)
            else:
                want = {"none": 401, "wrong": 403, **dict.fromkeys(TOKENS, 403), scope: ok}
            assert got == want, f"{host} {method} {path}"


@pytest.mark.parametrize("host", list(TABLE))
async def test_health_details_need_the_read_scope(hosts, host):
    url = hosts.urls[host] + "/v1/healthz"
    async with httpx.AsyncClient(timeout=20) as http:
        for headers in ({}, bearer(WRONG), bearer(TOKENS[INGEST]), bearer(TOKENS[ADMIN])):
            assert (await http.get(url, headers=headers)).json() == {"status": "ok"}
        details = (await http.get(url, headers=bearer(TOKENS[READ]))).json()
    assert details["status"] == "ok"
    assert details["site_id"] in ("fab1", "central")
    assert len(details) > 2


async def test_without_tokens_a_loopback_host_shows_health_details(client):
    """The zero-config loopback default (``wafermon up``) keeps every scope open."""
    body = (await client.get("/v1/healthz")).json()
    assert body["store"]["ok"] is True


# -- fail closed: a non-loopback listen without tokens does not start ---------------------------


def wafermon(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wafermon.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def host_config(tmp_path: Path, host: str, section: dict) -> Path:
    config: dict = {"site_id": "central" if host == "central" else "fab1", host: section}
    if host == "central":
        section["sites"] = [{"name": "fab1", "url": "http://127.0.0.1:1"}]
    else:
        config["backends"] = [
            {"name": "managed", "type": "sql", "config": {"url": "sqlite+aiosqlite:///x.db"}}
        ]
    if host == "sidecar":
        section["spool"] = {"dir": str(tmp_path / "spool")}
    path = tmp_path / f"{host}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("host", "missing"),
    [("gateway", ["ingest", "read"]), ("sidecar", ["ingest", "read"]), ("central", ["read"])],
)
def test_a_non_loopback_listen_without_tokens_refuses_to_start_naming_the_fix(
    tmp_path, host, missing
):
    config = host_config(tmp_path, host, {})
    # A real start, not --check: the process must exit before it listens.
    done = wafermon(host, "-c", str(config), "--listen", f"0.0.0.0:{free_port()}")
    assert done.returncode == 1
    assert "invalid config" in done.stderr
    for scope in missing:
        assert f"{host}.tokens.{scope}" in done.stderr
    assert "listen on 127.0.0.1" in done.stderr
    assert f"{host}.insecure: true" in done.stderr
    # One token is not enough either: every scope the host serves needs one.
    if len(missing) > 1:
        config = host_config(tmp_path, host, {"tokens": {missing[0]: "x-token"}})
        done = wafermon(host, "-c", str(config), "--listen", f"0.0.0.0:{free_port()}", "--check")
        assert done.returncode == 1
        assert f"{host}.tokens.{missing[1]}" in done.stderr
        assert f"{host}.tokens.{missing[0]}" not in done.stderr


def test_an_empty_token_from_the_environment_is_an_error_naming_the_key(tmp_path):
    config = host_config(tmp_path, "gateway", {"tokens": {"ingest": "${WAFERMON_INGEST_TOKEN}"}})
    done = subprocess.run(
        [sys.executable, "-m", "wafermon.cli", "gateway", "-c", str(config), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "WAFERMON_INGEST_TOKEN": "  "},
    )
    assert done.returncode == 1
    assert "gateway.tokens.ingest" in done.stderr
    assert "must not be empty or whitespace" in done.stderr


def test_insecure_is_warned_at_every_start_and_shown_on_metrics(tmp_path):
    config = host_config(tmp_path, "gateway", {"insecure": True})
    port = free_port()
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wafermon.cli",
                "gateway",
                "-c",
                str(config),
                "--listen",
                f"0.0.0.0:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        text = ""
        for _ in range(600):
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                break
            except httpx.TransportError:
                assert proc.poll() is None, log.read_text()
                import time

                time.sleep(0.05)
        assert metric(text, "wafermon_insecure") == 1
        assert metric(text, "wafermon_auth_open_scope", scope="read") == 1
        assert metric(text, "wafermon_auth_open_scope", scope="ingest") == 1
    finally:
        proc.terminate()
        proc.wait(30)
    warnings = [line for line in log.read_text().splitlines() if '"warning"' in line]
    assert any("gateway.insecure is true" in line for line in warnings), log.read_text()


# -- health and metrics cost no backend work per call; labels stay bounded -------------------


class CountingAdapter(QueryAdapter):
    checks = 0

    async def query(self, query: Query) -> QueryResult:
        return QueryResult([])

    async def health(self) -> Health:
        type(self).checks += 1
        return Health(True)


class LeakyAdapter(QueryAdapter):
    """A source whose client puts its URL, credentials included, into every error, as many
    database and HTTP clients do."""

    URL = "https://svc-archive:hunter2-pw@archive.example:9200/events"

    async def query(self, query: Query) -> QueryResult:
        raise ConnectionRefusedError(f"cannot reach {self.URL}")

    async def health(self) -> Health:
        return Health(False, f"GET {self.URL}: connection refused")


class Sources:
    @hookimpl
    def register_query_adapters(self, register):
        register("counting", CountingAdapter)
        register("leaky", LeakyAdapter)


async def test_health_and_metrics_reuse_one_check_per_ttl(start_gateway, plugins):
    plugins.register(Sources(), "test-sources")
    CountingAdapter.checks = 0
    sources = [{"name": "c", "type": "counting"}]
    async with start_gateway(sources=sources, gateway={"health_ttl": "1h"}) as (client, _):
        for _ in range(20):
            assert (await client.get("/v1/healthz")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
    assert CountingAdapter.checks == 1


async def test_the_method_label_comes_from_a_fixed_set(client):
    for method in ("BREW", "PROPFIND-X", "GET"):
        await client.request(method, "/v1/jobs")
    text = (await client.get("/metrics")).text
    assert "BREW" not in text
    assert "PROPFIND" not in text
    assert metric(text, "wafermon_http_requests_total", method="OTHER", route="/v1/jobs") == 2


# -- after runs that provoke errors, no secret value anywhere --------------------------------


async def test_no_secret_reaches_logs_health_metrics_or_answers(
    build_app, build_sidecar_app, plugins, sc_plugins, tmp_path, make_event
):
    plugins.register(Sources(), "test-sources")
    sc_plugins.register(wafermon_backend_gateway.plugin, "gateway-backend")
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, force=True)
    seen: list[str] = []
    dead = f"http://svc:hunter2-pw@127.0.0.1:{free_port()}"
    try:
        gateway = build_app(
            gateway={"tokens": dict(TOKENS), "health_ttl": 0},
            sources=[{"name": "leaky", "type": "leaky"}],
        )
        sidecar = build_sidecar_app(
            sidecar={"tokens": dict(TOKENS)},
            backends=[{"name": "gw", "type": "gateway", "config": {"url": dead, "timeout": 1}}],
        )
        async with AsyncExitStack() as stack:
            gw = await stack.enter_async_context(serve_app(gateway))
            sc = await stack.enter_async_context(serve_app(sidecar))
            sites = {
                "fab1": {"url": gw, "token": TOKENS[READ]},
                "fab2": {"url": gw, "token": WRONG},  # a site that refuses central's token
            }
            config = write_central_config(tmp_path, sites, tokens={READ: TOKENS[READ]})
            central = create_central_app(load_central(load_config(config)))
            ct = await stack.enter_async_context(serve_app(central))
            async with httpx.AsyncClient(timeout=20) as http:
                body = encode_array([make_event()])
                r = await http.post(f"{sc}/v1/ingest/events", content=body, headers=bearer(WRONG))
                seen.append(r.text)
                r = await http.post(
                    f"{sc}/v1/ingest/events", content=body, headers=bearer(TOKENS[INGEST])
                )
                assert r.status_code == 202
                # Wait until the router has failed against the dead gateway URL.
                for _ in range(200):
                    health = await http.get(f"{sc}/v1/healthz", headers=bearer(TOKENS[READ]))
                    if health.json()["backends"]["gw"]["last_error"]:
                        break
                    import asyncio

                    await asyncio.sleep(0.05)
                last_error = health.json()["backends"]["gw"]["last_error"]
                assert "127.0.0.1" in last_error
                assert "***@" in last_error
                for url in (gw, sc, ct):
                    for headers in ({}, bearer(WRONG), bearer(TOKENS[READ])):
                        for path in ("/v1/healthz", "/metrics", "/v1/jobs", "/v1/data/unified"):
                            if url == sc and path.startswith("/v1/") and path != "/v1/healthz":
                                continue
                            r = await http.get(url + path, headers=headers)
                            seen.append(r.text)
                gw_health = await http.get(f"{gw}/v1/healthz", headers=bearer(TOKENS[READ]))
                assert "***@archive.example" in gw_health.json()["sources"]["leaky"]["detail"]
                unified = await http.get(f"{gw}/v1/data/unified", headers=bearer(TOKENS[READ]))
                assert "***@archive.example" in unified.text
                ct_jobs = await http.get(f"{ct}/v1/jobs", headers=bearer(TOKENS[READ]))
                assert "refused central's token" in ct_jobs.text
    finally:
        configure_logging("INFO", force=True)
    logs = stream.getvalue()
    assert "hunter2-pw" in dead
    assert "request" in logs
    for text in [logs, *seen]:
        for secret in SECRETS:
            assert secret not in text, re.findall(rf".{{0,80}}{re.escape(secret)}.{{0,40}}", text)


def test_verify_tls_false_is_warned_at_start(tmp_path):
    sites = {
        "fab1": {"url": "https://127.0.0.1:1", "verify_tls": False},
        "fab2": {"url": "https://127.0.0.1:2"},
    }
    settings = load_central(load_config(write_central_config(tmp_path, sites))).settings
    (warning,) = settings.warnings()
    assert warning.startswith("central.sites fab1: verify_tls is false")


async def test_central_refuses_a_site_answer_larger_than_its_cap(tmp_path, plugins):
    """A site (or something posing as one) cannot make central hold an unbounded answer."""
    from tests.helpers.central import central_client, job_events, site_gateway

    events = job_events("fab1", [(f"j{n}", n) for n in range(40)])
    async with site_gateway(tmp_path, plugins, "fab1", events) as url:
        sites = {"fab1": url}
        async with central_client(tmp_path, sites, max_answer_bytes="4KiB") as (client, _app):
            small = (await client.get("/v1/jobs?limit=1")).json()
            assert small["sites"]["fab1"]["status"] == "ok"
            big = (await client.get("/v1/jobs?limit=40")).json()
    assert big["sites"]["fab1"]["status"] == "failed"
    assert big["sites"]["fab1"]["error"] == "the answer is larger than 4096 bytes"
    assert big["items"] == []


def test_the_commands_error_lines_strip_url_credentials(capsys):
    from wafermon_hosts.common.cli import fail

    with pytest.raises(SystemExit):
        fail("store failed: postgresql://app:hunter2-pw@db/x", ["sources[0]: s3://k:hunter2-pw@b"])
    err = capsys.readouterr().err
    assert "hunter2-pw" not in err
    assert "postgresql://***@db/x" in err
    assert "s3://***@b" in err


def test_short_tokens_and_insecure_are_warned(tmp_path, build_app):
    from wafermon_hosts.common.settings import security_warnings

    app = build_app(gateway={"tokens": {"read": ["short", "x" * 32]}, "insecure": True})
    settings = app.state.gateway.settings
    warnings = security_warnings("gateway", settings, ("ingest", "read"))
    assert warnings[0].startswith("gateway.tokens.read: 1 token(s) shorter than 16 characters")
    assert (
        warnings[1]
        == "gateway.insecure is true: scopes ingest need no token (listen 127.0.0.1:18000)"
    )
