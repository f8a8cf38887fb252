"""Print realistic wafer-processing events as NDJSON: jobs (lots) with subjobs (wafers).

    python examples/demo_events.py --jobs 5 | wafermon emit -c examples/site.yaml

A stand-in for the Python SDK's demo until that SDK lands; it builds events with the core
model, so everything it prints is valid by construction.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from wafermon import App, Entity, ErrorInfo, Event, Metrics, Source, encode_ndjson

TOOLS = ["etch-07", "litho-02", "cvd-11", "cmp-04"]
RECIPES = ["POLY-ETCH-3", "GATE-OX-12", "M1-CMP", "VIA-LITHO-5"]


def lot_events(rng: random.Random, site_id: str, app: App, start: datetime) -> list[Event]:
    job_id, lot = str(uuid4()), f"LOT-{rng.randint(10000, 99999)}"
    source = Source(host=socket.gethostname(), pid=1000 + rng.randint(0, 999), sdk="demo")
    meta = {"tool": rng.choice(TOOLS), "recipe": rng.choice(RECIPES), "customer": "ACME"}
    job = Entity(type="job", id=job_id, business_key=lot)
    events = [
        Event(
            event_id=uuid4(),
            kind="started",
            time=start,
            site_id=site_id,
            app=app,
            entity=job,
            metadata=meta,
            source=source,
        )
    ]
    clock, failed = start, False
    wafers = rng.randint(5, 25)
    for n in range(1, wafers + 1):
        wafer = Entity(
            type="subjob",
            id=str(uuid4()),
            parent_id=job_id,
            business_key=lot,
            sub_key=f"wafer-{n:02d}",
        )
        took = rng.uniform(20, 90)
        end = clock + timedelta(seconds=took)
        metrics = Metrics(
            duration_s=round(took, 3),
            cpu_user_s=round(took * 0.6, 3),
            cpu_system_s=round(took * 0.05, 3),
            mem_max_mb=rng.randint(80, 400),
        )
        events.append(
            Event(
                event_id=uuid4(),
                kind="started",
                time=clock,
                site_id=site_id,
                app=app,
                entity=wafer,
                source=source,
            )
        )
        if rng.random() < 0.03:
            failed = True
            events.append(
                Event(
                    event_id=uuid4(),
                    kind="failed",
                    time=end,
                    site_id=site_id,
                    app=app,
                    entity=wafer,
                    metrics=metrics,
                    source=source,
                    error=ErrorInfo(type="ChamberPressureError", message="pressure out of range"),
                )
            )
        else:
            events.append(
                Event(
                    event_id=uuid4(),
                    kind="finished",
                    time=end,
                    site_id=site_id,
                    app=app,
                    entity=wafer,
                    metrics=metrics,
                    source=source,
                )
            )
        events.append(
            Event(
                event_id=uuid4(),
                kind="progress",
                time=end,
                site_id=site_id,
                app=app,
                entity=job,
                metrics=Metrics(progress=round(n / wafers, 4)),
                source=source,
            )
        )
        clock = end
    total = (clock - start).total_seconds()
    final = Metrics(
        duration_s=round(total, 3),
        cpu_user_s=round(total * 0.6, 3),
        cpu_system_s=round(total * 0.05, 3),
        mem_max_mb=400,
        progress=1.0,
    )
    error = ErrorInfo(type="LotIncomplete", message="a wafer failed") if failed else None
    events.append(
        Event(
            event_id=uuid4(),
            kind="failed" if failed else "finished",
            time=clock,
            site_id=site_id,
            app=app,
            entity=job,
            metrics=final,
            error=error,
            source=source,
        )
    )
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--site", default="fab1")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    app = App(name="wafer-process", version="2.1.0", app_id=uuid4())
    # Lots start 5-20 minutes apart and take at most ~40 minutes: all of it is in the past.
    start = datetime.now(UTC) - timedelta(minutes=20 * args.jobs + 40)
    for _ in range(args.jobs):
        sys.stdout.buffer.write(encode_ndjson(lot_events(rng, args.site, app, start)))
        start += timedelta(minutes=rng.randint(5, 20))


if __name__ == "__main__":
    main()
