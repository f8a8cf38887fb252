"""What the gateway-group tests and bench/kafka_bench.py share (a uniquely named module):
events fast as NDJSON, a fresh PostgreSQL database, a gateway's site config with a Kafka
stream, counting what PostgreSQL holds, and the consumer group's lag read from the broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

REPO = Path(__file__).resolve().parents[3]
#: What the gateway and sidecar processes load: nothing else installed can get in the way.
PLUGINS = {"WAFERMON_LOAD_PLUGINS": "hosts,sql,kafka"}


def ndjson_events(count: int, *, jobs: int = 500, site_id: str = "fab1", tag: str = "") -> bytes:
    """``count`` valid events as NDJSON over ``jobs`` jobs (so their keys cover every
    partition), built without Event objects by wafermon.testing's ``ndjson_batch``."""
    from wafermon.testing.events import ndjson_batch

    prefix = tag or uuid.uuid4().hex[:8]
    return ndjson_batch(count, prefix=prefix, jobs=jobs, site_id=site_id)


def chunks(ndjson: bytes, size: int) -> list[bytes]:
    lines = ndjson.splitlines(keepends=True)
    return [b"".join(lines[i : i + size]) for i in range(0, len(lines), size)]


async def fresh_database(base: str, prefix: str = "kafka") -> str:
    """A new empty database on the server of ``base``; its postgresql:// URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.rsplit("/", 1)[0] + "/" + name


async def drop_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def stored(url: str) -> tuple[int, int]:
    """(rows, distinct event ids) in the managed store's events table (0, 0 before it exists)."""
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT to_regclass('events') IS NOT NULL"):
            return 0, 0
        row = await conn.fetchrow("SELECT count(*), count(DISTINCT event_id) FROM events")
        return row[0], row[1]
    finally:
        await conn.close()


def gateway_site(
    path: Path, pg_url: str, stream: dict[str, Any], *, max_in_flight: int = 200
) -> Path:
    """A gateway config: PostgreSQL store, HTTP on, and one ``gateway.streams`` Kafka entry."""
    config = {
        "site_id": "fab1",
        "gateway": {
            "streams": [
                {
                    "name": "events",
                    "type": "kafka",
                    "config": stream,
                    "max_in_flight": max_in_flight,
                }
            ]
        },
        "backends": [
            {
                "name": "managed",
                "type": "sql",
                "config": {"url": pg_url.replace("postgresql://", "postgresql+asyncpg://", 1)},
            }
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def group_lag(bootstrap: str, group: str, topic: str) -> int | None:
    """Messages of ``topic`` not committed by ``group``, over every partition (None: no
    partition has a committed offset yet)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await reader.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        (described,) = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        ends = await reader.end_offsets(partitions)
    finally:
        await reader.stop()
        await admin.close()
    if not committed:
        return None
    return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())


def restart_broker(timeout: float = 120.0) -> float:
    """Stop the scripts/services broker (SIGTERM) and start it again on the same port and data;
    seconds it was away."""
    started = time.monotonic()
    stop_broker(timeout)
    start_broker(timeout)
    return time.monotonic() - started


def stop_broker(timeout: float = 120.0) -> None:
    """Stop the scripts/services broker (SIGTERM; SIGKILL after ``timeout``)."""
    pid = int(Path(os.environ["WAFERMON_TEST_KAFKA_PIDFILE"]).read_text())
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while _alive(pid):
        if time.monotonic() - started > timeout:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def start_broker(timeout: float = 120.0) -> None:
    """Start the scripts/services broker again on the same port and data."""
    subprocess.run(
        [str(REPO / "scripts" / "services"), "start", "kafka"],
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def wait_stored(pg: str, expected: int, timeout: float) -> tuple[int, int]:
    """(rows, distinct ids) once ``expected`` rows are stored, or at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        rows, distinct = await stored(pg)
        if rows >= expected or time.monotonic() > deadline:
            return rows, distinct
        await asyncio.sleep(0.5)


async def all_healthy(gws: list[Any], timeout: float = 30) -> list[dict]:
    """Every gateway's /v1/healthz once all are ok (health is cached for a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        health = [httpx.get(f"{gw.url}/v1/healthz", timeout=10).json() for gw in gws]
        if all(h["status"] == "ok" for h in health):
            return health
        assert time.monotonic() < deadline, [h["streams"] for h in health]
        await asyncio.sleep(0.5)
