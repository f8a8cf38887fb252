"""The real ``wafermon gateway`` process, started and stopped the way an operator would."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from wafermon.testing import Proc, processes

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
def gateway_process(
    config: Path, *, tls: ssl.SSLContext | None = None
) -> Iterator[tuple[str, Proc]]:
    """``wafermon gateway`` on a free port (the kit's ``Proc``; its log next to the config);
    yields (base URL, Proc) once /v1/healthz answers 200, kills it at the end."""
    with processes() as procs:
        proc = Proc("gateway", config, log_dir=config.parent, ready=(200,), tls=tls)
        procs.append(proc)
        yield proc.start(timeout=30).url, proc


def stop(proc: Proc, timeout: float = 15) -> tuple[float, list[dict]]:
    """SIGTERM, wait for a clean exit; returns seconds taken and the JSON log lines."""
    return proc.stop(timeout), proc.log_lines()


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
