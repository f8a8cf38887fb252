"""Helpers shared by the sidecar tests (a uniquely named module, importable from tests).

- ``Collect``: a test-only emitter type ``collect`` (a real class, registered like any plugin's)
  that keeps what it gets in memory and can be switched down, made to refuse entities
  permanently, or made to fail its start.
- ``Proc``: a real ``wafermon sidecar`` / ``wafermon gateway`` process that can be stopped with
  SIGTERM, killed with SIGKILL and started again on the same port.
- Fast NDJSON bodies for the load tests, and reading back what a filesystem backend wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import attrs
import httpx
import orjson
import pytest

from wafermon import Emitter, Event, PermanentError, RetryableError, hookimpl

WAFERMON = str(Path(sys.executable).parent / "wafermon")

#: Router timings for tests: failures retried within milliseconds, breakers reopen quickly.
FAST_RETRY = {
    "timeout": "5s",
    "base_delay": "10ms",
    "max_delay": "200ms",
    "failure_threshold": 3,
    "open_seconds": "300ms",
}


# -- a test-only emitter ----------------------------------------------------------------------


@attrs.frozen
class CollectSettings:
    delay: float = 0.0  # seconds each emit takes


class Collect(Emitter):
    """Keeps every batch it takes in ``Collect.got[name]``; switches make it fail for real:

    - ``Collect.down``: backend names whose emit raises RetryableError (a backend outage);
    - ``Collect.refuse``: entity ids every collect backend rejects with PermanentError naming
      exactly those events (the rest of the batch is taken);
    - ``Collect.broken_start``: backend names whose start() raises.
    """

    Settings = CollectSettings
    got: ClassVar[dict[str, list[Event]]] = defaultdict(list)
    down: ClassVar[set[str]] = set()
    refuse: ClassVar[set[str]] = set()
    broken_start: ClassVar[set[str]] = set()

    async def start(self) -> None:
        if self.name in self.broken_start:
            raise RetryableError(f"{self.name} cannot reach its server")

    async def emit(self, batch):
        if self.settings.delay:
            await asyncio.sleep(self.settings.delay)
        if self.name in self.down:
            raise RetryableError(f"{self.name} is down")
        bad = [e.event_id for e in batch if e.entity.id in self.refuse]
        self.got[self.name].extend(e for e in batch if e.event_id not in bad)
        if bad:
            raise PermanentError(f"{self.name} refuses entity {sorted(self.refuse)}", bad)

    def stats(self) -> dict[str, float]:
        return {"events_taken": float(len(self.got[self.name]))}

    @classmethod
    def reset(cls) -> None:
        cls.got.clear()
        cls.down.clear()
        cls.refuse.clear()
        cls.broken_start.clear()


class SidecarTestComponents:
    """A plugin object providing the test-only emitter type ``collect``."""

    @hookimpl
    def register_emitters(self, register):
        register("collect", Collect)


def ids(events) -> list[str]:
    return [str(e.event_id) for e in events]


async def wait_for(condition, timeout: float = 10.0, interval: float = 0.02) -> None:
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


# -- events, fast -----------------------------------------------------------------------------


def ndjson_batch(
    count: int, *, prefix: str = "job", metadata: dict | None = None, entity_id: str | None = None
) -> bytes:
    """``count`` valid events as NDJSON, each with a fresh event_id, about 600 bytes each.

    Built from a template with orjson (no Event objects), so 100,000 events take a second.
    Times are within the last minutes, inside the managed store's hot window.
    """
    now = datetime.now(UTC) - timedelta(minutes=5)
    lines = []
    for i in range(count):
        event_id = str(uuid.uuid4())
        event = {
            "schema_version": 1,
            "event_id": event_id,
            "kind": "progress",
            "time": (now + timedelta(microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "site_id": "fab1",
            "app": {"name": "wafer-process", "version": "2.1.0"},
            "entity": {
                "type": "subjob",
                "id": entity_id or f"{prefix}-{event_id[:18]}",
                "parent_id": f"{prefix}-lot",
                "business_key": "LOT-12345",
                "sub_key": f"wafer-{i % 25:02d}",
            },
            "metrics": {
                "duration_s": 1.5,
                "cpu_user_s": 1.2,
                "cpu_system_s": 0.1,
                "mem_max_mb": 120.5,
                "progress": (i % 100) / 100,
            },
            "metadata": metadata or {"tool": "etch-07", "recipe": "POLY-ETCH-3"},
            "source": {"host": "node-17", "pid": 4242, "sdk": "python", "sdk_version": "0.1.0"},
        }
        lines.append(orjson.dumps(event))
    return b"\n".join(lines) + b"\n"


def event_ids(ndjson: bytes) -> list[str]:
    return [orjson.loads(line)["event_id"] for line in ndjson.splitlines() if line.strip()]


def filesystem_event_ids(root: Path) -> list[str]:
    """Every event_id a filesystem backend wrote under ``root`` (plain and gzipped files)."""
    found = []
    for path in sorted(root.rglob("events*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as file:
            found.extend(orjson.loads(line)["event_id"] for line in file if line.strip())
    return found


# -- real processes ---------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """``wafermon <host> --config FILE --listen 127.0.0.1:PORT``, restartable on the same port.

    stderr (JSON log lines) goes to ``<log_dir>/<host>-<n>.log``, one file per start.
    """

    def __init__(
        self,
        host: str,
        config: Path,
        *,
        port: int | None = None,
        log_dir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.config = config
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> Proc:
        self.starts += 1
        self.log_path = self.log_dir / f"{self.host}-{self.port}-{self.starts}.log"
        listen = f"127.0.0.1:{self.port}"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [WAFERMON, self.host, "--config", str(self.config), "--listen", listen],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.host} exited with {self.proc.returncode}: {self.log()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/v1/healthz", timeout=2).status_code in (200, 503):
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"{self.host} did not answer /v1/healthz within {timeout}s")
            time.sleep(0.05)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def rss_kb(self) -> int:
        """VmRSS of the process, from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def log_lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def close(self) -> None:
        self.kill9()


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    """Collects Procs and kills whatever is still running at the end of the test."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.close()


def write_yaml(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def backend_health(url: str) -> dict[str, dict]:
    return httpx.get(f"{url}/v1/healthz", timeout=10).json()["backends"]


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def site(tmp_path, *, backends=None, **sidecar) -> dict:
    return {
        "site_id": "fab1",
        "sidecar": {"spool": {"dir": str(tmp_path / "spool")}, "retry": FAST_RETRY, **sidecar},
        "backends": backends
        or [{"name": "archive", "type": "filesystem", "config": {"root": str(tmp_path / "fs")}}],
    }
