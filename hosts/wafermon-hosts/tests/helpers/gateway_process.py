"""The real ``wafermon gateway`` process, started and stopped the way an operator would."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers.gateway import free_port

WAFERMON = [str(Path(sys.executable).parent / "wafermon")]


def write_site(tmp_path: Path, **gateway) -> Path:
    config = {
        "site_id": "fab1",
        "gateway": gateway,
        "backends": [
            {
                "name": "managed",
                "type": "sql",
                "config": {"url": f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"},
            }
        ],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextlib.contextmanager
def gateway_process(config: Path, *, scheme: str = "http", verify=True):
    """``wafermon gateway`` on a free port; yields (base URL, process) once healthz answers."""
    port = free_port()
    proc = subprocess.Popen(
        [*WAFERMON, "gateway", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gateway exited with {proc.returncode}: {proc.stderr.read()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/v1/healthz", verify=verify).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail("gateway did not answer /v1/healthz within 30 s")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop(proc: subprocess.Popen, timeout: float = 15) -> tuple[float, list[dict]]:
    """SIGTERM, wait for the exit; returns seconds taken and the JSON log lines."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=timeout)
    took = time.monotonic() - started
    assert proc.returncode == 0, err
    return took, [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
