"""Fuzzing central from its /openapi.json in front of a real gateway and a dead site: no 500s."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers.central import dead_url, encode_events, job_events, write_central_config
from tests.helpers.gateway import FUZZ_TOKENS, free_port
from tests.helpers.openapi import fuzz_schema, fuzz_test, stop_fuzz_apps
from wafermon.config import load_config
from wafermon_hosts.central import create_app, load_central

WAFERMON = str(Path(sys.executable).parent / "wafermon")


def fuzz_setup():
    """Central (built at import: ``schema.parametrize`` needs the schema then) for a gateway
    that the module fixture starts on a port chosen now, and a dead site."""
    root = Path(tempfile.mkdtemp(prefix="wafermon-ct-fuzz-"))
    port = free_port()
    site = {
        "site_id": "fab1",
        "backends": [
            {
                "name": "managed",
                "type": "sql",
                "config": {"url": f"sqlite+aiosqlite:///{root}/g.db"},
            }
        ],
    }
    (root / "site.yaml").write_text(yaml.safe_dump(site))
    sites = {"fab1": f"http://127.0.0.1:{port}", "fab2": dead_url()}
    config = write_central_config(root, sites, site_timeout="2s", tokens=FUZZ_TOKENS)
    return create_app(load_central(load_config(config))), root, port


FUZZ_APP, FUZZ_ROOT, GATEWAY_PORT = fuzz_setup()
schema = fuzz_schema(FUZZ_APP)
stop_fuzz_app = stop_fuzz_apps(FUZZ_ROOT)


@pytest.fixture(scope="module", autouse=True)
def real_gateway(stop_fuzz_app):
    proc = subprocess.Popen(
        [WAFERMON, "gateway", "-c", str(FUZZ_ROOT / "site.yaml"), "--listen",
         f"127.0.0.1:{GATEWAY_PORT}", "--log-level", "warning"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{GATEWAY_PORT}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{url}/v1/healthz")
                break
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        events = job_events("fab1", [(f"j{n}", n) for n in range(12)], failed=["j3"])
        httpx.post(f"{url}/v1/ingest/managed", content=encode_events(events)).raise_for_status()
        yield
    finally:
        proc.terminate()
        proc.wait(15)


test_fuzzed_requests_never_get_a_server_error = fuzz_test(schema, max_examples=25)
