"""R SDK benchmarks. ``run(quick)`` is called by bench/run.py like the other suites.

Installs sdk-r into a temporary R library and runs sdk-r/bench/bench.R against a real
``wafermon sidecar`` (filesystem backend) with bench/hosts.py's ``run_sdk_program``:

- Caller cost per event of ``job_tick()`` and ``emit_event()`` to the sidecar, and of
  ``job_tick()`` in direct mode, as ratios to appending the same JSON line to a local file
  (an open connection's ``writeLines``) measured in the same run. R runs one thread and the
  SDK starts none, so the POST of each full batch (500 events) is part of the caller's cost,
  amortised over the batch.
- Throughput: events/s from the first ``job_tick()`` until ``wafermon_flush()`` returned TRUE,
  i.e. until the sidecar acknowledged (stored) every event, with the baseline's rate beside it.
Needs R with the Debian packages scripts/test installs, and wafermon-hosts with
wafermon-backend-filesystem.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hosts import run_sdk_program

ROOT = Path(__file__).resolve().parent.parent


def run(quick: bool) -> dict[str, object]:
    calls, rounds, events = (2_000, 3, 5_000) if quick else (10_000, 5, 20_000)
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-r-lib-") as lib:
        subprocess.run(
            ["R", "CMD", "INSTALL", "--no-docs", f"--library={lib}", str(ROOT / "sdk-r")],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        script = ROOT / "sdk-r" / "bench" / "bench.R"
        figures = run_sdk_program(
            ["Rscript", str(script), str(calls), str(rounds), str(events)],
            "sdk_r",
            env={"R_LIBS": lib},
        )
    return {
        "r_sdk_caller_cost": figures["caller_cost"],
        "r_sdk_throughput": figures["throughput"],
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
