"""Real ``wafermon sidecar`` / ``wafermon gateway`` processes on free ports, for tests.

The hosts are started the way an operator starts them: the ``wafermon`` command of the running
interpreter's environment, as a subprocess, with a site config file. (The kit does not import
the hosts package: core must not depend on it, and a separate process is what production runs.)
``Proc`` waits until ``/v1/healthz`` answers, can be stopped with SIGTERM, killed with SIGKILL
and started again on the same port; its log goes to a file per start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

#: Router timings for tests: failures retried within milliseconds, breakers reopen quickly.
FAST_RETRY = {
    "timeout": "5s",
    "base_delay": "10ms",
    "max_delay": "200ms",
    "failure_threshold": 3,
    "open_seconds": "300ms",
}


def wafermon_command() -> str:
    """The ``wafermon`` executable next to this interpreter (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "wafermon"
    found = str(beside) if beside.exists() else shutil.which("wafermon")
    if found is None:
        pytest.fail("no `wafermon` command next to this Python or on PATH: install wafermon-core")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_yaml(path: Path, config: dict[str, Any]) -> Path:
    """Write a site config (a dict) as YAML to ``path``; returns ``path``."""
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def sidecar_config(
    folder: Path, backends: list[dict[str, Any]], *, site_id: str = "fab1", **sidecar: Any
) -> Path:
    """Write ``folder/sidecar.yaml``: a spool under ``folder``, FAST_RETRY, these backends."""
    section = {"spool": {"dir": str(folder / "spool")}, "retry": FAST_RETRY, **sidecar}
    body = {"site_id": site_id, "sidecar": section, "backends": backends}
    return write_yaml(folder / "sidecar.yaml", body)


def http_status(
    url: str, timeout: float = 2.0, *, context: ssl.SSLContext | None = None
) -> int | None:
    """The HTTP status of GET ``url``, or None when nothing answers (``context``: the TLS
    trust for an https URL)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            status: int = answer.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def post_json(
    url: str,
    body: bytes,
    *,
    content_type: str = "application/x-ndjson",
    token: str | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """POST ``body``; returns (status, decoded JSON answer or None). Never raises on 4xx/5xx."""
    headers = {"content-type": content_type}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, orjson.loads(raw) if raw else None


class Proc:
    """``wafermon <host> --config FILE --listen 127.0.0.1:PORT``, restartable on the same port.

    stdout and stderr (JSON log lines) go to ``<log_dir>/<host>-<port>-<n>.log``, one file per
    start. ``ready`` lists the /v1/healthz statuses that count as up (a degraded host is 503).
    ``tls``: the host serves https (its config has ``tls``), trusted through this context.
    """

    def __init__(
        self,
        host: str,
        config: Path,
        *,
        port: int | None = None,
        log_dir: Path,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        ready: tuple[int, ...] = (200, 503),
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.config = config
        self.port = port or free_port()
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.env = {**os.environ, **(env or {})}
        self.args = args
        self.ready = ready
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path: Path | None = None

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> Proc:
        self.starts += 1
        self.log_path = self.log_dir / f"{self.host}-{self.port}-{self.starts}.log"
        listen = f"127.0.0.1:{self.port}"
        command = [wafermon_command(), self.host, "--config", str(self.config)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*command, "--listen", listen, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /v1/healthz answers with a ``ready`` status; fails the test if it exits."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.host} exited with {self.proc.returncode}: {self.log()[-3000:]}")
            if http_status(f"{self.url}/v1/healthz", context=self.tls) in self.ready:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{self.host} did not answer /v1/healthz within {timeout}s")
            time.sleep(0.05)

    def kill9(self) -> None:
        """SIGKILL, as a crash would (nothing flushed, no shutdown handler)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait (a sidecar drains first); returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM, wait, and fail the test unless the host exited 0; returns seconds taken."""
        began = time.monotonic()
        code = self.terminate(timeout)
        assert code == 0, f"{self.host} exited with {code}: {self.log()[-3000:]}"
        return time.monotonic() - began

    def rss_kb(self) -> int:
        """VmRSS of the process, from /proc/<pid>/status."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines of the current start."""
        return [orjson.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def close(self) -> None:
        self.kill9()


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    """Collects Procs (append them) and kills whatever still runs at the end of the test."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.close()


async def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll ``condition()`` (sync or async) until true; fails the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
