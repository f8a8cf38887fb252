"""The request observer's ids and access lines (common/observe.py, common/logs.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from wafermon_hosts.common.logs import configure_logging, get_logger, log_request

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


async def test_each_request_gets_its_own_id_unless_it_brings_a_plain_one(start_sidecar):
    async with start_sidecar() as (client, _app):
        ids = [(await client.get("/v1/healthz")).headers["x-request-id"] for _ in range(3)]
        kept = await client.get("/v1/healthz", headers={"X-Request-ID": "job-7.step:2"})
        odd = await client.get("/v1/healthz", headers={"X-Request-ID": "no spaces allowed"})
    assert len(set(ids)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert kept.headers["x-request-id"] == "job-7.step:2"
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])


def test_access_lines_read_like_structlogs(tmp_path):
    """The access line's fields and timestamp are those structlog writes for any other line
    (it is written without structlog, for speed)."""
    path = tmp_path / "host.log"
    with path.open("w") as stream:
        configure_logging("INFO", stream=stream, force=True)
        try:
            before = datetime.now(UTC)
            log_request({"method": "GET", "path": "/v1/healthz", "status": 200})
            access = json.loads(path.read_text())
            get_logger("wafermon_hosts.access").info("request", method="GET")
            after = datetime.now(UTC)
        finally:
            configure_logging("INFO", force=True)
    other = json.loads(path.read_text().splitlines()[1])
    assert {k: access[k] for k in ("event", "level", "logger")} == {
        k: other[k] for k in ("event", "level", "logger")
    }
    for line in (access, other):
        assert STAMP.fullmatch(line["timestamp"]), line["timestamp"]
    stamp = datetime.fromisoformat(access["timestamp"])
    assert before <= stamp <= after
