"""Mutual TLS between real sidecar, gateway and central processes, with a private CA made by
openssl exactly as docs/security.md shows: the gateway asks every client for a certificate
signed by that CA; the sidecar's gateway backend and central present theirs; a client without
one is refused during the handshake, whatever token it holds.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.sidecar import Proc, free_port, ndjson_batch, processes, write_yaml

INGEST = "/v1/ingest/events"

TOKENS = {"ingest": "mtls-ingest-token", "read": "mtls-read-token"}


def openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


def make_private_ca(folder: Path) -> None:
    """ca.pem, and gateway / sidecar / central certificates signed by it (docs/security.md)."""
    openssl(
        folder,
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
        *("-days", "825", "-subj", "/CN=wafermon private CA"),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        *("-keyout", "ca-key.pem", "-out", "ca.pem"),
    )
    for name, usage in (
        ("gateway", "serverAuth"),
        ("sidecar", "clientAuth"),
        ("central", "clientAuth"),
    ):
        (folder / f"{name}.ext").write_text(
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage={usage}\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "authorityKeyIdentifier=keyid\n"
            "subjectKeyIdentifier=hash\n"
        )
        openssl(
            folder,
            *("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
            *("-subj", f"/CN={name}", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr"),
        )
        openssl(
            folder,
            *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem"),
            *("-CAcreateserial", "-days", "825", "-extfile", f"{name}.ext"),
            *("-out", f"{name}.pem"),
        )


class TlsProc(Proc):
    """A host process served over https (Proc's readiness probe speaks plain http)."""

    def __init__(self, *args, client: ssl.SSLContext, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.url = self.url.replace("http:", "https:")
        self.client = client

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.log()[-3000:]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/v1/healthz", verify=self.client).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{self.host} not ready: {self.log()[-3000:]}"
            time.sleep(0.1)


def context(pki: Path, name: str | None) -> ssl.SSLContext:
    """Trusts the private CA; presents ``name``'s certificate when given."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if name is not None:
        ctx.load_cert_chain(str(pki / f"{name}.pem"), str(pki / f"{name}-key.pem"))
    return ctx


@pytest.fixture
def pki(tmp_path) -> Path:
    folder = tmp_path / "pki"
    folder.mkdir()
    make_private_ca(folder)
    return folder


@pytest.fixture
def stack(tmp_path, pki) -> Iterator[dict]:
    db = tmp_path / "managed.db"
    tls = {"cert": str(pki / "gateway.pem"), "key": str(pki / "gateway-key.pem")}
    gw_config = write_yaml(
        tmp_path / "gateway.yaml",
        {
            "site_id": "fab1",
            "gateway": {"tokens": TOKENS, "tls": {**tls, "client_ca": str(pki / "ca.pem")}},
            "backends": [
                {"name": "managed", "type": "sql", "config": {"url": f"sqlite+aiosqlite:///{db}"}}
            ],
        },
    )
    with processes() as procs:
        gw = TlsProc("gateway", gw_config, log_dir=tmp_path, client=context(pki, "central"))
        procs.append(gw)
        gw.start()
        sc_config = write_yaml(
            tmp_path / "sidecar.yaml",
            {
                "site_id": "fab1",
                "sidecar": {"spool": {"dir": str(tmp_path / "spool")}},
                "backends": [
                    {
                        "name": "gateway",
                        "type": "gateway",
                        "config": {
                            "url": gw.url,
                            "token": TOKENS["ingest"],
                            "ca_file": str(pki / "ca.pem"),
                            "client_cert": str(pki / "sidecar.pem"),
                            "client_key": str(pki / "sidecar-key.pem"),
                        },
                    }
                ],
            },
        )
        sc = Proc("sidecar", sc_config, log_dir=tmp_path)
        procs.append(sc)
        sc.start()
        site = {"name": "fab1", "url": gw.url, "token": TOKENS["read"]}
        ct_config = write_yaml(
            tmp_path / "central.yaml",
            {
                "site_id": "central",
                "central": {
                    "sites": [
                        {
                            **site,
                            "ca_file": str(pki / "ca.pem"),
                            "client_cert": str(pki / "central.pem"),
                            "client_key": str(pki / "central-key.pem"),
                        },
                        # The same gateway without a client certificate: refused.
                        {**site, "name": "nocert", "ca_file": str(pki / "ca.pem")},
                    ]
                },
            },
        )
        ct = Proc("central", ct_config, log_dir=tmp_path, port=free_port())
        procs.append(ct)
        ct.start()
        yield {"gateway": gw, "sidecar": sc, "central": ct}


def test_mutual_tls_between_sidecar_gateway_and_central(stack, pki):
    gw, sc, ct = stack["gateway"], stack["sidecar"], stack["central"]
    read = {"Authorization": f"Bearer {TOKENS['read']}"}
    # A client without a certificate is refused in the handshake, even with the right token.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{gw.url}/v1/jobs", headers=read, verify=context(pki, None))
    # One with a certificate from another CA is refused too.
    other = pki / "other"
    other.mkdir()
    make_private_ca(other)
    stranger = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    stranger.load_cert_chain(str(other / "central.pem"), str(other / "central-key.pem"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{gw.url}/v1/jobs", headers=read, verify=stranger)

    # SDK -> sidecar (plain, loopback) -> gateway (mutual TLS): the events arrive.
    body = ndjson_batch(5)
    r = httpx.post(
        f"{sc.url}{INGEST}", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.status_code == 202, r.text
    with_cert = context(pki, "central")
    deadline = time.monotonic() + 60
    while True:
        jobs = httpx.get(f"{gw.url}/v1/subjobs?limit=100", headers=read, verify=with_cert).json()
        if jobs["items"]:
            break
        assert time.monotonic() < deadline, sc.log()[-3000:]
        time.sleep(0.2)

    # central -> gateway (mutual TLS): the site with a certificate answers, the other fails.
    answer = httpx.get(f"{ct.url}/v1/subjobs?limit=100", timeout=30).json()
    assert answer["sites"]["fab1"]["status"] == "ok"
    assert answer["sites"]["nocert"]["status"] == "failed"
    assert {j["entity_id"] for j in answer["items"]} == {j["entity_id"] for j in jobs["items"]}
    assert TOKENS["read"] not in ct.log() + gw.log() + sc.log()
    assert TOKENS["ingest"] not in ct.log() + gw.log() + sc.log()
