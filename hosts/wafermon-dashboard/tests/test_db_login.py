"""The dashboard's sign-in, over TLS, in headless Chromium against a real gateway with tokens.

Pages without a session redirect to /login; a wrong token is refused; any read token of the
gateway signs in (here a second one, as a team with its own token would); Dash's requests
without a session get 401; signing out ends the session. No token value appears in a page,
an answer or a log line. A non-loopback listen without sign-in refuses to start.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from db_helpers import (
    Processes,
    demo_lots,
    free_port,
    seed_store,
    wafermon,
    write_yaml,
)
from playwright.sync_api import expect

DASH_TOKEN = "dash-read-token-4b1e"  # the dashboard's own, for its gateway reads
OPERATOR_TOKEN = "team-read-token-77aa"  # another read token: what a person signs in with
INGEST_TOKEN = "sdk-ingest-token-0c9d"
WRONG = "not-a-token-3f3f"
SECRETS = (DASH_TOKEN, OPERATOR_TOKEN, INGEST_TOKEN, WRONG)


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "dash.pem", folder / "dash-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("secured")
    url = seed_store(work / "fab1.db", demo_lots("fab1", 12, seed=3))
    gw_port, dash_port = free_port(), free_port()
    site = write_yaml(
        work / "site.yaml",
        {
            "site_id": "fab1",
            "gateway": {
                "listen": f"127.0.0.1:{gw_port}",
                "tokens": {"ingest": INGEST_TOKEN, "read": [DASH_TOKEN, OPERATOR_TOKEN]},
            },
            "backends": [{"name": "managed", "type": "sql", "config": {"url": url}}],
        },
    )
    cert, key = self_signed(work)
    token_file = work / "dash.token"
    token_file.write_text(DASH_TOKEN + "\n")
    token_file.chmod(0o600)
    gateway = f"http://127.0.0.1:{gw_port}"
    dashboard = f"https://127.0.0.1:{dash_port}"
    procs = Processes(work)
    try:
        procs.start("gateway", wafermon("gateway", "-c", str(site)), gateway,
                    gateway + "/v1/healthz")  # fmt: skip
        dash = procs.start(
            "dashboard",
            wafermon("dashboard", "--gateway", gateway, "--token-file", str(token_file),
                     "--tls-cert", str(cert), "--tls-key", str(key),
                     "--listen", f"127.0.0.1:{dash_port}", "--refresh", "1"),
            dashboard, dashboard + "/healthz",
        )  # fmt: skip
        for _ in range(900):  # up to 90 s on a busy machine
            assert dash.process.poll() is None, dash.log.read_text()[-3000:]
            with contextlib.suppress(httpx.TransportError):
                trust = ssl.create_default_context(cafile=str(cert))
                if httpx.get(dashboard + "/healthz", verify=trust).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"the dashboard did not come up: {dash.log.read_text()[-3000:]}")
        yield {"dashboard": dashboard, "cert": cert, "procs": procs, "work": work}
    finally:
        procs.stop_all()


@pytest.fixture
def tls_page(browser):
    """A page in a context that trusts the test's self-signed certificate."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def sign_in(page, token: str) -> None:
    page.locator("#token").fill(token)
    page.locator("#login-submit").click()


def test_pages_redirect_to_the_login_and_a_read_token_signs_in(tls_page, secured):
    page, base = tls_page, secured["dashboard"]
    page.goto(base + "/jobs?status=finished")
    expect(page).to_have_url(re.compile(r"/login\?next=/jobs%3Fstatus%3Dfinished$"))
    expect(page.locator("#login-form")).to_be_visible()

    sign_in(page, WRONG)
    expect(page.locator("#login-error")).to_contain_text("not a read token")
    expect(page).to_have_url(re.compile(r"/login$"))
    sign_in(page, INGEST_TOKEN)  # a token of the wrong scope does not sign in either
    expect(page.locator("#login-error")).to_be_visible()

    sign_in(page, OPERATOR_TOKEN)
    expect(page).to_have_url(re.compile(r"/jobs\?status=finished$"))
    expect(page.locator("#jobs-rows tbody tr").first).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "wafermon_session")
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Lax")
    for secret in SECRETS:
        assert secret not in page.content()
        assert secret not in cookie["value"]

    page.locator("#nav-signout").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(base + "/health")
    expect(page).to_have_url(re.compile(r"/login\?next=/health$"))


def test_dash_requests_and_assets_need_a_session(secured):
    base, cert = secured["dashboard"], str(secured["cert"])
    with httpx.Client(verify=ssl.create_default_context(cafile=cert)) as http:
        for path in ("/_dash-layout", "/_dash-dependencies", "/assets/style.css"):
            r = http.get(base + path)
            assert r.status_code in (302, 401), (path, r.status_code)
        assert http.post(base + "/_dash-update-component", json={}).status_code == 401
        r = http.get(base + "/login?next=//evil.example/x")
        assert 'value="/"' in r.text  # no open redirect after sign-in
        r = http.post(base + "/login", data={"token": OPERATOR_TOKEN, "next": "https://evil"})
        assert (r.status_code, r.headers["location"]) == (302, "/")
        assert http.get(base + "/_dash-layout").status_code == 200  # the session cookie works


def test_no_token_reaches_the_dashboards_log(secured, tls_page):
    # After the sign-ins (refused ones too) of the tests above and this one.
    page = tls_page
    page.goto(secured["dashboard"] + "/")
    sign_in(page, WRONG)
    expect(page.locator("#login-error")).to_be_visible()
    logs = "".join(p.read_text() for p in Path(secured["work"]).glob("*.log"))
    assert "sign-in refused" in logs
    for secret in SECRETS:
        assert secret not in logs


def test_a_non_loopback_listen_without_sign_in_refuses_to_start(tmp_path):
    done = subprocess.run(
        wafermon("dashboard", "--gateway", "http://127.0.0.1:1", "--listen", "0.0.0.0:1"),
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode != 0
    assert "not loopback" in done.stderr
    assert "--token" in done.stderr
    assert "--insecure" in done.stderr
