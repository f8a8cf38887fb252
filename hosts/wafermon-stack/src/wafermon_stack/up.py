"""``wafermon up``: the whole stack on one machine, as child processes, on embedded defaults.

It writes two configs into the data dir (``site.yaml`` for the sidecar and the gateway,
``central.yaml`` for the central host), then runs::

    wafermon gateway   -c data/site.yaml      SQLite store data/wafermon.db, source "archive"
    wafermon sidecar   -c data/site.yaml      spool data/spool -> gateway + archive (files)
    wafermon central   -c data/central.yaml   one site: this gateway
    wafermon dashboard --central ... --sidecar ...

Each child runs in its own session (Ctrl-C reaches only ``up``) and dies with ``up`` if that is
killed (Linux: PR_SET_PDEATHSIG). On Ctrl-C or SIGTERM ``up`` stops them in reverse order of
dependence: dashboard, central, sidecar (which hands what it holds to the gateway first), gateway.
Their logs go to ``data/logs/<name>.log``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import yaml

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
ONCE_LOTS = 12


@attrs.frozen
class Ports:
    sidecar: int = 17000
    gateway: int = 18000
    central: int = 19000
    dashboard: int = 8050


@attrs.define
class Child:
    name: str
    argv: list[str]
    health: str  # URL that answers 200 once the child is ready
    log_path: Path
    process: subprocess.Popen | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join(f"    {line}" for line in text[-lines:])
        return "    (no log)"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wafermon(*args: str) -> list[str]:
    """The argv of a ``wafermon`` command run by this interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "wafermon.cli", *args]


class Stack:
    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        ports: Ports = Ports(),
        site_id: str = "fab1",
        out: Callable[[str], None] | None = None,
    ) -> None:
        self.data = Path(data_dir).resolve()
        self.host = host
        self.ports = ports
        self.site_id = site_id
        self.out = out or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stop_requested = threading.Event()
        self.children: list[Child] = []
        self.feeder: Any = None

    def url(self, name: str) -> str:
        return f"http://{self.host}:{getattr(self.ports, name)}"

    # -- configs -------------------------------------------------------------------------------

    def write_configs(self) -> tuple[Path, Path]:
        """data/site.yaml and data/central.yaml (rewritten at each start)."""
        for sub in ("logs", "spool", "archive"):
            (self.data / sub).mkdir(parents=True, exist_ok=True)
        site = {
            "site_id": self.site_id,
            "sidecar": {
                "listen": f"{self.host}:{self.ports.sidecar}",
                "spool": {"dir": str(self.data / "spool"), "max_bytes": "1GiB"},
                "backends": ["gateway", "archive"],
                "retry": {"base_delay": "200ms", "max_delay": "5s", "open_seconds": "5s"},
                "drain_timeout": "5s",
            },
            "gateway": {
                "listen": f"{self.host}:{self.ports.gateway}",
                "store": "managed",
                "sources": ["archive"],
            },
            "backends": [
                {"name": "gateway", "type": "gateway", "priority": 1,
                 "config": {"url": self.url("gateway")}},
                {"name": "archive", "type": "filesystem", "priority": 2,
                 "config": {"root": str(self.data / "archive"), "rotate_after": "5m"}},
                {"name": "managed", "type": "sql", "priority": 3,
                 "config": {"url": f"sqlite+aiosqlite:///{self.data / 'wafermon.db'}"}},
            ],
            "sources": [
                {"name": "archive", "type": "filesystem",
                 "config": {"root": str(self.data / "archive")}},
            ],
        }  # fmt: skip
        central = {
            "site_id": "central",
            "central": {
                "listen": f"{self.host}:{self.ports.central}",
                "site_timeout": "3s",
                "cache_ttl": "1s",
                "sites": [{"name": self.site_id, "url": self.url("gateway")}],
            },
        }
        header = "# Written by `wafermon up`; rewritten at each start.\n"
        site_path, central_path = self.data / "site.yaml", self.data / "central.yaml"
        site_path.write_text(header + yaml.safe_dump(site, sort_keys=False))
        central_path.write_text(header + yaml.safe_dump(central, sort_keys=False))
        return site_path, central_path

    def plan(self) -> list[Child]:
        site, central = self.write_configs()
        logs = self.data / "logs"

        def child(name: str, argv: list[str], health: str) -> Child:
            return Child(name, argv, health, logs / f"{name}.log")

        health = {n: self.url(n) + "/v1/healthz" for n in ("gateway", "sidecar", "central")}
        return [
            child("gateway", wafermon("gateway", "-c", str(site)), health["gateway"]),
            child("sidecar", wafermon("sidecar", "-c", str(site)), health["sidecar"]),
            child("central", wafermon("central", "-c", str(central)), health["central"]),
            child(
                "dashboard",
                wafermon("dashboard", "--central", self.url("central"), "--sidecar",
                         self.url("sidecar"), "--listen", f"{self.host}:{self.ports.dashboard}",
                         "--refresh", "2"),
                self.url("dashboard") + "/healthz",
            ),
        ]  # fmt: skip

    # -- running -------------------------------------------------------------------------------

    def _ports_free(self) -> list[str]:
        busy = []
        for name in ("sidecar", "gateway", "central", "dashboard"):
            port = getattr(self.ports, name)
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((self.host, port))
                except OSError:
                    busy.append(f"{name} port {port} is in use (choose another: --{name}-port)")
        return busy

    def _start(self) -> bool:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("WAFERMON_READ_TOKEN", None)  # the generated stack has no tokens
        for child in self.children:
            log = child.log_path.open("ab")
            child.process = subprocess.Popen(
                child.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            log.close()
        pending = list(self.children)
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while pending:
                for child in list(pending):
                    if not child.alive():
                        self.out(f"error: {child.name} exited during start-up; its log:")
                        self.out(child.log_tail())
                        return False
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(child.health).status_code < 500:
                            pending.remove(child)
                            base = child.health.split("/", 3)[:3]
                            self.out(f"  {child.name:<9} ready  {'/'.join(base)}")
                if self.stop_requested.is_set():
                    return False
                if time.monotonic() > deadline:
                    names = ", ".join(c.name for c in pending)
                    self.out(f"error: not ready within {START_TIMEOUT_S:.0f}s: {names}")
                    for child in pending:
                        self.out(f"  {child.name} log:\n{child.log_tail()}")
                    return False
                time.sleep(0.2)
        return True

    def stop(self) -> None:
        """Stop the children, most dependent first; SIGKILL whatever outlives the timeout."""
        if self.feeder is not None:
            self.stop_requested.set()
        for child in reversed(self.children):
            if child.alive():
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.out(f"  {child.name} did not stop in {STOP_TIMEOUT_S:.0f}s: killed")
                    child.process.kill()
                    child.process.wait()
            if child.process is not None:
                self.out(f"  {child.name:<9} stopped (exit {child.process.returncode})")

    def run(self, *, demo: bool = False, once: bool = False) -> int:
        """Start everything, then wait for Ctrl-C / SIGTERM (or, with ``once``, check and stop)."""
        busy = self._ports_free()
        if busy:
            for line in busy:
                self.out(f"error: {line}")
            return 1
        previous = {
            sig: signal.signal(sig, lambda *_: self.stop_requested.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        self.children = self.plan()
        self.out(f"wafermon up: starting the stack in {self.data}")
        code = 1
        try:
            if not self._start():
                return 1
            self._print_urls()
            if once:
                code = self._once()
                return code
            feeder_thread = self._start_demo() if demo else None
            self.out("running; Ctrl-C stops everything")
            while not self.stop_requested.wait(0.5):
                dead = [c for c in self.children if not c.alive()]
                if dead:
                    for child in dead:
                        self.out(f"error: {child.name} exited ({child.process.returncode}):")
                        self.out(child.log_tail())
                    return 1
            if feeder_thread is not None:
                feeder_thread.join(10)
            code = 0
            return 0
        finally:
            self.out("stopping ...")
            self.stop()
            if self.feeder is not None:
                self.feeder.close()
                self.out(self.feeder.summary())
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.out("stopped" if code == 0 else "stopped (with errors)")

    def _print_urls(self) -> None:
        self.out(f"  dashboard  {self.url('dashboard')}/")
        self.out(f"  central    {self.url('central')}/v1/jobs")
        self.out(f"  gateway    {self.url('gateway')}/v1/jobs")
        self.out(f"  sidecar    {self.url('sidecar')}/v1/ingest/events")
        self.out(f"  configs    {self.data / 'site.yaml'}, {self.data / 'central.yaml'}")

    def _feeder(self) -> Any:
        from .demo import DemoFeeder

        self.feeder = DemoFeeder(
            self.url("sidecar"), site_id=self.site_id, spool_dir=self.data / "sdk-spool"
        )
        return self.feeder

    def _start_demo(self) -> threading.Thread:
        feeder = self._feeder()

        def feed() -> None:
            try:
                sent = feeder.burst(30)
                self.out(f"demo: sent {sent} events of 30 finished lots via {feeder.via}")
                feeder.run_forever(self.stop_requested)
            except Exception as exc:  # noqa: BLE001 - the stack keeps running without the demo
                self.out(f"demo stopped: {exc}")

        thread = threading.Thread(target=feed, name="demo", daemon=True)
        thread.start()
        self.out("demo: feeding wafer jobs (live lots start every few seconds)")
        return thread

    # -- --once ----------------------------------------------------------------------------

    def _once(self) -> int:
        """Feed a burst, wait until it is visible through the gateway, central and the
        dashboard, print a summary. 0 when every check passed."""
        feeder = self._feeder()
        began = time.monotonic()
        sent = feeder.burst(ONCE_LOTS)
        self.out(f"demo: sent {sent} events of {ONCE_LOTS} lots via {feeder.via}")
        checks: list[tuple[str, bool, str]] = []
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            jobs = self._wait_for_jobs(client, self.url("gateway") + "/v1/jobs", ONCE_LOTS)
            checks.append(("gateway stored every lot", jobs >= ONCE_LOTS, f"{jobs} jobs"))
            via_central = self._wait_for_jobs(client, self.url("central") + "/v1/jobs", ONCE_LOTS)
            checks.append(("central lists them", via_central >= ONCE_LOTS, f"{via_central} jobs"))
            failed = len(
                client.get(self.url("gateway") + "/v1/jobs", params={"status": "failed"}).json()[
                    "items"
                ]
            )
            ok, detail = self._check_dashboard(client)
            checks.append(("dashboard renders the job list", ok, detail))
            sidecar = client.get(self.url("sidecar") + "/v1/healthz").json()
            lag = {n: b.get("lag") for n, b in sidecar.get("backends", {}).items()}
            checks.append(("sidecar delivered everything", all(v == 0 for v in lag.values()),
                           f"lag {lag}"))  # fmt: skip
        took = time.monotonic() - began
        self.out(f"summary ({took:.1f}s after start-up):")
        for label, passed, detail in checks:
            self.out(f"  [{'ok' if passed else 'FAIL'}] {label}: {detail}")
        self.out(f"  {jobs} jobs at the gateway, {failed} of them failed")
        return 0 if all(passed for _l, passed, _d in checks) else 1

    def _wait_for_jobs(self, client: httpx.Client, url: str, expected: int) -> int:
        deadline = time.monotonic() + 30
        count = 0
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                response = client.get(
                    url, params={"limit": 1000}, headers={"Cache-Control": "no-cache"}
                )
                count = len(response.json()["items"])
                if count >= expected:
                    return count
            time.sleep(0.3)
        return count

    def _check_dashboard(self, client: httpx.Client) -> tuple[bool, str]:
        """GET the page and its layout, then run the callback that renders /jobs."""
        base = self.url("dashboard")
        try:
            index = client.get(base + "/jobs")
            layout = client.get(base + "/_dash-layout")
            body = {
                "output": "page.children",
                "outputs": {"id": "page", "property": "children"},
                "inputs": [{"id": "url", "property": "pathname", "value": "/jobs"}],
                "state": [{"id": "url", "property": "search", "value": ""}],
                "changedPropIds": ["url.pathname"],
            }
            rendered = client.post(base + "/_dash-update-component", json=body)
        except httpx.HTTPError as exc:
            return False, f"no answer: {exc}"
        if index.status_code != 200 or layout.status_code != 200:
            return False, f"HTTP {index.status_code} / {layout.status_code}"
        if rendered.status_code != 200:
            return False, f"callback HTTP {rendered.status_code}"
        rows = rendered.text.count('"job-link"')
        return rows > 0, f"{rows} job rows on the first page"
