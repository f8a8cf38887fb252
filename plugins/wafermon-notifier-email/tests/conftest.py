"""Fixtures: real aiosmtpd servers (plain, STARTTLS with a self-signed certificate, STARTTLS
with AUTH) as separate processes, each with its own Maildir, and a self-signed certificate."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from email_helpers import PASSWORD, USER, SmtpServer, start_sink


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key); the cert is its own CA."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test server's certificate (apt install openssl)")
    folder = tmp_path_factory.mktemp("cert")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def plain_smtp(tmp_path_factory) -> Iterator[SmtpServer]:
    yield from start_sink(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="session")
def tls_smtp(tmp_path_factory, certificate) -> Iterator[SmtpServer]:
    cert, key = certificate
    yield from start_sink(tmp_path_factory.mktemp("tls"), "--cert", str(cert), "--key", str(key))


@pytest.fixture(scope="session")
def auth_smtp(tmp_path_factory, certificate) -> Iterator[SmtpServer]:
    cert, key = certificate
    yield from start_sink(
        tmp_path_factory.mktemp("auth"),
        "--cert", str(cert), "--key", str(key), "--user", USER, "--password", PASSWORD,
    )  # fmt: skip
