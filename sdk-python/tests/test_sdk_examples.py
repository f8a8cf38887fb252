"""The examples in sdk-python/examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sdk_helpers import running_stack, sdk_env

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_wafer_lot_against_a_real_sidecar(tmp_path):
    with running_stack(tmp_path / "stack") as stack:
        env = sdk_env(sidecar_url=stack.sidecar_url, spool_dir=tmp_path / "spool")
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "wafer_lot.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lot = result.stdout.split()[1].rstrip(":")
        assert "delivered" in result.stdout
        # The stack is eventually consistent: the job's own last event may reach the gateway
        # in a later delivery than its subjobs' events.
        detail = stack.wait_for_job(
            lot, lambda d: len(d["subjobs"]) == 5 and d["job"]["status"] != "running"
        )
        statuses = {s["sub_key"]: s["status"] for s in detail["subjobs"]}
        assert statuses["wafer-3"] == "failed"
        assert detail["job"]["status"] == "finished"


def test_async_and_direct_example(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "async_and_direct.py")],
        cwd=tmp_path,
        env=sdk_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "delivered: True" in result.stdout
    assert list((tmp_path / "data" / "sdk-example").rglob("events*.jsonl"))
