"""Realistic wafer jobs for demos: lots (jobs) of wafers (subjobs) on fab tools.

``lot_events`` builds one finished lot; ``past_lots`` places finished lots over the last hours
(what ``burst`` sends first, so the history has something to show, and what ``wafermon demo
--stdout`` prints); ``DemoFeeder.run_forever`` keeps a few lots running in real time, a
wafer every few seconds, so the live view moves. Events go to a sidecar through the Python SDK
when ``wafermon_sdk`` is installed (``Client(mode="sidecar")``), else straight over HTTP to the
sidecar's ``POST /v1/ingest/events`` (NDJSON). Either way they travel the real path:
sidecar spool -> router -> gateway (and the file-system backup).
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import attrs
import httpx

from wafermon import App, Entity, ErrorInfo, Event, Metrics, Source, encode_ndjson

#: (application, tools, recipes): the steps of a small fab.
STEPS = [
    ("litho-expose", ["litho-02", "litho-05"], ["VIA-LITHO-5", "M1-LITHO-2"]),
    ("etch-process", ["etch-07", "etch-09"], ["POLY-ETCH-3", "OXIDE-ETCH-1"]),
    ("cvd-deposit", ["cvd-11"], ["GATE-OX-12", "TEOS-4"]),
    ("cmp-polish", ["cmp-04"], ["M1-CMP", "STI-CMP"]),
]
CUSTOMERS = ["ACME", "Globex", "Initech"]
FAILURES = [
    ("ChamberPressureError", "chamber pressure out of range"),
    ("RFPowerFault", "RF power dropped below set point"),
    ("AlignmentError", "overlay alignment beyond tolerance"),
]
APP_IDS = {name: UUID(int=n + 1) for n, (name, _t, _r) in enumerate(STEPS)}


@attrs.define
class Lot:
    """A lot being processed in real time."""

    job: Entity
    app: App
    meta: dict[str, Any]
    wafers: int
    next_wafer: int = 1
    wafer: Entity | None = None
    wafer_started: datetime | None = None
    wafer_ends: datetime | None = None
    started: datetime = attrs.Factory(lambda: datetime.now(UTC))
    failed: bool = False
    mem: float = 0.0


class DemoFeeder:
    def __init__(
        self,
        sidecar_url: str,
        *,
        site_id: str = "fab1",
        token: str | None = None,
        seed: int | None = None,
        spool_dir: Path | None = None,
        use_sdk: bool = True,
        speed: float = 1.0,
    ) -> None:
        self.url = sidecar_url.rstrip("/")
        self.site_id = site_id
        self.rng = random.Random(seed)
        self.speed = speed  # wafers take 1.5-5 s / speed
        self.source = Source(host=socket.gethostname(), pid=4242, sdk="demo")
        self.sent = 0
        self.lots_started = 0
        self.lots_failed = 0
        self.via = "http"
        self._sdk: Any = None
        self._http = httpx.Client(
            base_url=self.url,
            timeout=10,
            trust_env=False,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        if use_sdk:
            self._sdk = _sdk_client(self.url, site_id, token, spool_dir)
            if self._sdk is not None:
                self.via = "wafermon_sdk"

    # -- sending -------------------------------------------------------------------------------

    def send(self, events: Sequence[Event]) -> None:
        if not events:
            return
        if self._sdk is not None:
            self._sdk.emit_batch(events)
        else:
            for attempt in range(20):
                try:
                    response = self._http.post(
                        "/v1/ingest/events",
                        content=encode_ndjson(list(events)),
                        headers={"Content-Type": "application/x-ndjson"},
                    )
                except httpx.TransportError:
                    time.sleep(min(0.2 * 2**attempt, 2.0))
                    continue
                if response.status_code in (202, 200):
                    break
                if response.status_code == 503:
                    time.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                raise RuntimeError(
                    f"the sidecar refused demo events: HTTP {response.status_code} "
                    f"{response.text[:300]}"
                )
            else:
                raise RuntimeError(f"the sidecar at {self.url} did not take the demo events")
        self.sent += len(events)

    def flush(self, timeout: float = 15.0) -> None:
        if self._sdk is not None:
            self._sdk.flush(timeout)

    def close(self) -> None:
        if self._sdk is not None:
            self._sdk.close(5.0)
        self._http.close()

    # -- the past ------------------------------------------------------------------------------

    def burst(self, lots: int, *, hours: float = 6.0) -> int:
        """Send ``lots`` finished lots ending over the last ``hours``; returns events sent."""
        before = self.sent
        for events in self.past_lots(lots, hours=hours):
            self.send(events)
        self.flush()
        return self.sent - before

    def past_lots(self, lots: int, *, hours: float = 6.0) -> Iterator[list[Event]]:
        """``lots`` finished lots, the n-th ending at n/lots of the last ``hours``: all of
        each lies in the past."""
        end = datetime.now(UTC) - timedelta(minutes=1)
        span = timedelta(hours=hours)
        for n in range(lots):
            events = self.lot_events(end - span)
            shift = (end - span + span * ((n + 1) / lots)) - events[-1].time
            yield [attrs.evolve(e, time=e.time + shift) for e in events]

    def lot_events(self, start: datetime) -> list[Event]:
        """A whole lot that ran from ``start``: job, 5-12 wafers, progress, final state."""
        app, meta = self._pick()
        job = self._job(meta)
        self.lots_started += 1
        events = [self._event("started", start, app, job, metadata=meta)]
        clock, failed, mem = start, False, 0.0
        wafers = self.rng.randint(5, 12)
        for n in range(1, wafers + 1):
            wafer = self._wafer(job, n)
            took = self.rng.uniform(40, 150)
            end = clock + timedelta(seconds=took)
            events.append(self._event("started", clock, app, wafer))
            wafer_failed = self.rng.random() < 0.015
            failed = failed or wafer_failed
            events.append(self._wafer_end(wafer_failed, end, app, wafer, took))
            mem = max(mem, events[-1].metrics.mem_max_mb)
            events.append(self._event("progress", end, app, job, progress=n / wafers))
            clock = end + timedelta(seconds=self.rng.uniform(2, 10))
        events.append(self._lot_end(failed, clock, app, job, start, mem))
        return events

    # -- now -----------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event | None = None, *, parallel: int = 3) -> None:
        """Keep up to ``parallel`` lots running in real time until ``stop`` is set."""
        stop = stop or threading.Event()
        active: list[Lot] = []
        next_start = datetime.now(UTC)
        while not stop.is_set():
            now = datetime.now(UTC)
            batch: list[Event] = []
            if len(active) < parallel and now >= next_start:
                active.append(self._start_lot(now, batch))
                next_start = now + timedelta(seconds=self.rng.uniform(2, 6) / self.speed)
            for lot in list(active):
                if self._advance(lot, now, batch):
                    active.remove(lot)
            self.send(batch)
            stop.wait(0.25)
        self.flush(5.0)

    def _start_lot(self, now: datetime, batch: list[Event]) -> Lot:
        app, meta = self._pick()
        lot = Lot(self._job(meta), app, meta, self.rng.randint(4, 8), started=now)
        self.lots_started += 1
        batch.append(self._event("started", now, app, lot.job, metadata=meta))
        return lot

    def _advance(self, lot: Lot, now: datetime, batch: list[Event]) -> bool:
        """Emit what is due for ``lot``; True when the lot has ended."""
        if lot.wafer is None:
            if lot.next_wafer > lot.wafers:
                batch.append(self._lot_end(lot.failed, now, lot.app, lot.job, lot.started, lot.mem))
                return True
            lot.wafer = self._wafer(lot.job, lot.next_wafer)
            lot.wafer_started = now
            lot.wafer_ends = now + timedelta(seconds=self.rng.uniform(1.5, 5.0) / self.speed)
            batch.append(self._event("started", now, lot.app, lot.wafer))
            return False
        if now < lot.wafer_ends:
            return False
        took = (now - lot.wafer_started).total_seconds()
        failed = self.rng.random() < 0.03
        lot.failed = lot.failed or failed
        batch.append(self._wafer_end(failed, now, lot.app, lot.wafer, took))
        lot.mem = max(lot.mem, batch[-1].metrics.mem_max_mb)
        batch.append(
            self._event("progress", now, lot.app, lot.job, progress=lot.next_wafer / lot.wafers)
        )
        lot.next_wafer += 1
        lot.wafer = None
        return False

    # -- building events -----------------------------------------------------------------------

    def _pick(self) -> tuple[App, dict[str, Any]]:
        name, tools, recipes = self.rng.choice(STEPS)
        app = App(name=name, version="2.1.0", app_id=APP_IDS[name])
        meta = {
            "tool": self.rng.choice(tools),
            "recipe": self.rng.choice(recipes),
            "customer": self.rng.choice(CUSTOMERS),
            "operator": f"op-{self.rng.randint(1, 9):02d}",
        }
        return app, meta

    def _job(self, meta: dict[str, Any]) -> Entity:
        lot = f"LOT-{self.rng.randint(10000, 99999)}"
        return Entity(type="job", id=f"{lot.lower()}-{uuid4().hex[:6]}", business_key=lot)

    def _wafer(self, job: Entity, n: int) -> Entity:
        return Entity(
            type="subjob",
            id=f"{job.id}-w{n:02d}",
            parent_id=job.id,
            business_key=job.business_key,
            sub_key=f"wafer-{n:02d}",
        )

    def _event(
        self,
        kind: str,
        when: datetime,
        app: App,
        entity: Entity,
        *,
        metrics: Metrics | None = None,
        metadata: dict[str, Any] | None = None,
        error: ErrorInfo | None = None,
        progress: float | None = None,
    ) -> Event:
        if progress is not None:
            metrics = Metrics(progress=round(progress, 4))
        return Event(
            event_id=uuid4(),
            kind=kind,
            time=when,
            site_id=self.site_id,
            app=app,
            entity=entity,
            metrics=metrics or Metrics(),
            metadata=metadata or {},
            error=error,
            source=self.source,
        )

    def _wafer_end(
        self, failed: bool, when: datetime, app: App, wafer: Entity, took: float
    ) -> Event:
        metrics = Metrics(
            duration_s=round(took, 3),
            cpu_user_s=round(took * self.rng.uniform(0.4, 0.8), 3),
            cpu_system_s=round(took * self.rng.uniform(0.02, 0.08), 3),
            mem_max_mb=float(self.rng.randint(90, 420)),
        )
        if not failed:
            return self._event("finished", when, app, wafer, metrics=metrics)
        kind, message = self.rng.choice(FAILURES)
        error = ErrorInfo(type=kind, message=message)
        return self._event("failed", when, app, wafer, metrics=metrics, error=error)

    def _lot_end(
        self, failed: bool, when: datetime, app: App, job: Entity, started: datetime, mem: float
    ) -> Event:
        total = max((when - started).total_seconds(), 0.001)
        metrics = Metrics(
            duration_s=round(total, 3),
            cpu_user_s=round(total * 0.6, 3),
            cpu_system_s=round(total * 0.05, 3),
            mem_max_mb=mem or None,
            progress=1.0,
        )
        if not failed:
            return self._event("finished", when, app, job, metrics=metrics)
        self.lots_failed += 1
        error = ErrorInfo(type="LotIncomplete", message="a wafer of this lot failed")
        return self._event("failed", when, app, job, metrics=metrics, error=error)

    def summary(self) -> str:
        return (
            f"demo: {self.sent} events, {self.lots_started} lots started, "
            f"{self.lots_failed} failed, sent via {self.via}"
        )


def _sdk_client(url: str, site_id: str, token: str | None, spool_dir: Path | None) -> Any:
    """A wafermon_sdk Client in sidecar mode, or None when the SDK is not installed or does
    not accept these settings (then the feeder posts over HTTP itself)."""
    try:
        import wafermon_sdk
    except ImportError:
        return None
    settings: dict[str, Any] = {"mode": "sidecar", "sidecar_url": url, "site_id": site_id}
    if token:
        settings["token"] = token
    if spool_dir is not None:
        settings["spool_dir"] = str(spool_dir)
    with contextlib.suppress(Exception):
        return wafermon_sdk.Client(**settings)
    return None
