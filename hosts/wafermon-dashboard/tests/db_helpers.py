"""Helpers for the dashboard tests (a uniquely named module, importable from tests).

Everything runs for real: gateways, central, a sidecar and the dashboards are ``wafermon``
processes on free ports; the stores are SQLite files seeded through the sql store's own ingest
(the way the gateway stores events) with the demo's realistic wafer lots.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
import yaml

from wafermon import Event
from wafermon_stack.demo import DemoFeeder

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = (
    "the browser tests need Debian's Chromium and Playwright for Python: "
    "`apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium` and "
    "`pip install playwright` (never `playwright install`: the system browser is used)"
)
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wafermon(*args: str) -> list[str]:
    return [sys.executable, "-m", "wafermon.cli", *args]


# -- data -------------------------------------------------------------------------------------


def demo_lots(
    site_id: str, lots: int, *, seed: int, hours: float = 20.0, running: int = 0
) -> list[Event]:
    """``lots`` finished lots ending over the last ``hours``, plus ``running`` lots that are
    still going (their last events are left out)."""
    feeder = DemoFeeder("http://unused", site_id=site_id, seed=seed, use_sdk=False)
    rng = random.Random(seed)
    end = datetime.now(UTC) - timedelta(minutes=1)
    events = [e for lot in feeder.past_lots(lots, hours=hours) for e in lot]
    for _ in range(running):  # started a few minutes ago, last wafers not done yet
        lot = feeder.lot_events(end - timedelta(hours=hours))
        lot = lot[: max(4, len(lot) - 3 * rng.randint(2, 4) - 1)]
        shift = end - timedelta(minutes=rng.randint(1, 20)) - lot[-1].time
        events += [attrs.evolve(e, time=e.time + shift) for e in lot]
    feeder.close()
    return events


async def _ingest(url: str, events: Sequence[Event]) -> None:
    from wafermon_backend_sql import SqlStore
    from wafermon_backend_sql.store import Settings

    store = SqlStore("managed", Settings(url=url))
    await store.start()
    try:
        for i in range(0, len(events), 5000):
            await store.ingest(list(events[i : i + 5000]))
    finally:
        await store.close()


def run_async(make_coro: Any) -> None:
    """Run a coroutine to the end in a thread of its own (Playwright's sync API may already
    hold an event loop in this one)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make_coro())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def seed_store(path: Path, events: Sequence[Event]) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    run_async(lambda: _ingest(url, events))
    return url


async def _archive(root: Path, events: Sequence[Event]) -> None:
    from wafermon_backend_filesystem import FilesystemEmitter
    from wafermon_backend_filesystem.emitter import EmitterSettings

    emitter = FilesystemEmitter(name="archive", settings=EmitterSettings(root=root))
    await emitter.start()
    try:
        await emitter.emit(list(events))
    finally:
        await emitter.close()


def seed_archive(root: Path, events: Sequence[Event]) -> None:
    run_async(lambda: _archive(root, events))


# -- processes --------------------------------------------------------------------------------


@attrs.define
class Proc:
    name: str
    url: str
    process: subprocess.Popen
    log: Path
    health: str


class Processes:
    """Starts ``wafermon`` processes and stops every one of them (by PID) at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Proc] = []

    def start(self, name: str, argv: list[str], url: str, health: str) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )  # fmt: skip
        proc = Proc(name, url, process, log, health)
        self.started.append(proc)
        return proc

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.started)
        with httpx.Client(timeout=2, trust_env=False) as client:
            while pending:
                for proc in list(pending):
                    if proc.process.poll() is not None:
                        raise RuntimeError(f"{proc.name} exited: {proc.log.read_text()[-3000:]}")
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(proc.health).status_code < 500:
                            pending.remove(proc)
                if time.monotonic() > deadline:
                    names = [p.name for p in pending]
                    raise RuntimeError(f"not ready within {timeout:.0f}s: {names}")
                time.sleep(0.2)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.process.wait(20)
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait()


@attrs.define
class Stack:
    """Two seeded gateways (fab1 with an archive source), central in front of them and a dead
    fab3, a sidecar, and two dashboards: one on fab1's gateway, one on central."""

    gateway: str
    gateway2: str
    central: str
    sidecar: str
    dashboard: str  # --gateway fab1 --sidecar
    central_dashboard: str  # --central
    workdir: Path


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextlib.contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    fab1 = demo_lots("fab1", 70, seed=7, running=4)
    fab2 = demo_lots("fab2", 25, seed=8, running=2)
    archive_only = demo_lots("fab1", 6, seed=9, hours=40)
    url1 = seed_store(workdir / "fab1.db", fab1)
    url2 = seed_store(workdir / "fab2.db", fab2)
    seed_archive(workdir / "archive", archive_only + fab1[:200])  # overlaps: deduplicated
    ports = {n: free_port() for n in ("gw1", "gw2", "central", "sidecar", "dash", "cdash")}
    base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    site1 = write_yaml(
        workdir / "fab1.yaml",
        {
            "site_id": "fab1",
            "gateway": {"listen": f"127.0.0.1:{ports['gw1']}", "sources": ["archive"]},
            "sidecar": {
                "listen": f"127.0.0.1:{ports['sidecar']}",
                "spool": {"dir": str(workdir / "spool")},
                "backends": ["files"],
            },
            "backends": [
                {"name": "managed", "type": "sql", "config": {"url": url1}},
                {"name": "files", "type": "filesystem", "config": {"root": str(workdir / "sc")}},
            ],
            "sources": [
                {"name": "archive", "type": "filesystem",
                 "config": {"root": str(workdir / "archive")}},
            ],
        },
    )  # fmt: skip
    site2 = write_yaml(
        workdir / "fab2.yaml",
        {
            "site_id": "fab2",
            "gateway": {"listen": f"127.0.0.1:{ports['gw2']}"},
            "backends": [{"name": "managed", "type": "sql", "config": {"url": url2}}],
        },
    )
    central = write_yaml(
        workdir / "central.yaml",
        {
            "site_id": "central",
            "central": {
                "listen": f"127.0.0.1:{ports['central']}",
                "site_timeout": "1s",
                "sites": [
                    {"name": "fab1", "url": base["gw1"]},
                    {"name": "fab2", "url": base["gw2"]},
                    {"name": "fab3", "url": f"http://127.0.0.1:{free_port()}"},
                ],
            },
        },
    )
    dash = ["--listen", f"127.0.0.1:{ports['dash']}", "--refresh", "1"]
    cdash = ["--listen", f"127.0.0.1:{ports['cdash']}", "--refresh", "1"]
    plan = [
        ("gateway1", wafermon("gateway", "-c", str(site1)), base["gw1"], "/v1/healthz"),
        ("gateway2", wafermon("gateway", "-c", str(site2)), base["gw2"], "/v1/healthz"),
        ("sidecar", wafermon("sidecar", "-c", str(site1)), base["sidecar"], "/v1/healthz"),
        ("central", wafermon("central", "-c", str(central)), base["central"], "/v1/healthz"),
        (
            "dashboard",
            wafermon("dashboard", "--gateway", base["gw1"], "--sidecar", base["sidecar"], *dash),
            base["dash"],
            "/healthz",
        ),
        (
            "central-dashboard",
            wafermon("dashboard", "--central", base["central"], *cdash),
            base["cdash"],
            "/healthz",
        ),
    ]
    procs = Processes(workdir)
    try:
        for name, argv, url, health in plan:
            procs.start(name, argv, url, url + health)
        procs.wait_ready()
        yield Stack(
            base["gw1"], base["gw2"], base["central"], base["sidecar"], base["dash"],
            base["cdash"], workdir,
        )  # fmt: skip
    finally:
        procs.stop_all()


def screenshot_dir() -> Path | None:
    """Where browser tests save their screenshots: $WAFERMON_SCREENSHOTS (docs/images when
    refreshing the docs), else nowhere."""
    value = os.environ.get("WAFERMON_SCREENSHOTS")
    return Path(value) if value else None


def require_browser() -> None:
    """Fail (never skip) with the install instructions when the browser stack is missing."""
    import pytest

    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(f"playwright is not installed: {INSTALL_HINT}")
