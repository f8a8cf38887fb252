"""The scale-out harness the stream benchmarks share (kafka_bench, nats_bench).

sidecar -> a broker -> N ``wafermon gateway`` processes consuming as one group -> PostgreSQL,
timed from the first POST until the last event is stored, every event checked present exactly
once; optionally one gateway killed with SIGKILL a third of the way in and started again. Each
transport says only what differs: the gateways' ``gateway.streams`` entry, the sidecar's
backend, and how to read the group's lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from gateway_bench import fresh_database, gateway, post_all
from sidecar_bench import _post, _wafermon, process, sidecar

from hosts import free_port

#: One run: (work folder, NDJSON bodies, how many gateways, kill one?) -> figures.
Pipeline = Callable[[Path, list[bytes], int, bool], Awaitable[dict[str, object]]]


def gateway_args(work: Path, port: int, db: str, stream: dict[str, Any]) -> list[str]:
    """``wafermon gateway`` consuming ``stream`` (a gateway.streams entry) into ``db``."""
    config = {
        "site_id": "fab1",
        "gateway": {"listen": f"127.0.0.1:{port}", "streams": [{"name": "events", **stream}]},
        "backends": [{"name": "managed", "type": "sql", "config": {"url": db}}],
    }
    path = work / f"gateway-{port}.yaml"
    path.write_text(orjson.dumps(config).decode())  # JSON is YAML
    return [_wafermon(), "gateway", "--config", str(path), "--log-level", "warning"]


async def stored(db: str) -> tuple[int, int]:
    """(rows, distinct event ids) in the managed store's events table (0, 0 before it exists)."""
    conn = await asyncpg.connect(db)
    try:
        row = await conn.fetchrow("SELECT count(*), count(DISTINCT event_id) FROM events")
    except asyncpg.UndefinedTableError:
        return 0, 0
    finally:
        await conn.close()
    return row[0], row[1]


async def pipeline(
    work: Path,
    bodies: list[bytes],
    gateways: int,
    kill: bool,
    *,
    label: str,
    stream: dict[str, Any],
    backend: dict[str, Any],
    lag: Callable[[], Awaitable[int | None]],
    lag_figure: str,
) -> dict[str, object]:
    """One run of sidecar -> broker -> ``gateways`` gateways -> a fresh PostgreSQL database.

    ``lag()`` is the group's backlog (falsy once the consumers are caught up); with ``kill``,
    the seconds from the last POST until it is reported as ``lag_figure``.
    """
    total = sum(b.count(b"\n") for b in bodies)
    tag = os.urandom(4).hex()
    plain_db = await fresh_database(f"wm_bench_{label}")
    db = plain_db.replace("postgresql://", "postgresql+asyncpg://")
    restarted: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        ports, pids = [], []
        for n in range(gateways):
            port = free_port()
            ports.append(port)
            url, log = f"http://127.0.0.1:{port}", work / f"gateway-{tag}-{n}.log"
            pids.append(
                stack.enter_context(process(gateway_args(work, port, db, stream), url, log))
            )
        # Its port is picked once the gateways listen, so it cannot be one of theirs.
        args, sc_url, log = sidecar(work, [{"name": "bus", **backend}], f"{label}-{tag}")
        stack.enter_context(process(args, sc_url, log))
        began = time.perf_counter()
        poster = asyncio.create_task(_post(sc_url, bodies))
        killed_at = recovered = None
        if kill:
            while (await stored(plain_db))[0] < total // 3:
                await asyncio.sleep(0.1)
            os.kill(pids[1], signal.SIGKILL)  # the second gateway, started again at once
            killed_at = time.perf_counter() - began
            with (work / f"gateway-{tag}-restart.log").open("w") as out:
                gw_args = gateway_args(work, ports[1], db, stream)
                restarted.append(subprocess.Popen(gw_args, stdout=out, stderr=subprocess.STDOUT))
        posted = await poster
        last_post = time.perf_counter()
        while (await stored(plain_db))[1] < total:
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - began
        if kill:
            while await lag():
                await asyncio.sleep(0.2)
            recovered = time.perf_counter() - last_post
        rows, distinct = await stored(plain_db)
    for proc in restarted:
        proc.terminate()
        proc.wait(60)
    figures: dict[str, object] = {
        "events_per_s": round(total / seconds),
        "sidecar_accept_events_per_s": round(total / posted),
        "nothing_lost_or_doubled": rows == distinct == total,
    }
    if kill:
        figures["killed_after_s"] = round(killed_at, 1)
        figures[lag_figure] = round(recovered, 1)
    return figures


async def scaleout(
    label: str, what: str, total: int, bodies: Callable[[], list[bytes]], run: Pipeline
) -> dict[str, object]:
    """``run`` with 1, 2 and 3 gateways, then 3 with one killed, each as a ratio to the same
    volume POSTed straight to one gateway (/v1/ingest/managed) in the same run."""
    with tempfile.TemporaryDirectory(prefix=f"wafermon-bench-{label}-") as tmp:
        work = Path(tmp)
        with gateway(await fresh_database(f"wm_bench_{label}_direct"), work) as base:
            direct = total / await post_all(base, bodies())
        out: dict[str, object] = {
            "what": what,
            "baseline": "the same volume POSTed straight to one gateway (/v1/ingest/managed)",
            "baseline_direct_to_gateway_events_per_s": round(direct),
            "cpus": os.cpu_count(),
        }
        for n, kill in ((1, False), (2, False), (3, False), (3, True)):
            figures = await run(work, bodies(), n, kill)
            figures["ratio_to_direct"] = round(figures["events_per_s"] / direct, 3)  # type: ignore[operator]
            out["gateways_3_one_killed" if kill else f"gateways_{n}"] = figures
        return out
