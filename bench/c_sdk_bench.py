"""C SDK benchmarks. ``run(quick)`` is called by bench/run.py like the other suites.

Builds ``wafermon-c-bench`` (sdk-c/bench/c_bench.c) with CMake in sdk-c/build, starts a real
``wafermon sidecar`` (filesystem backend, fsync on) with sdk_bench's ``host`` helper, and
runs the program against it:

- Caller-thread cost per event of ``wafermon_job_progress`` and ``wafermon_emit_event``,
  median and p99 ns, timed call by call while the sender thread delivers to the sidecar, as
  ratios to a baseline measured the same way in the same run: a mutex-protected memcpy of a
  record of the same size into a preallocated ring (the least a thread-safe bounded queue
  does). Target: median <= 1 µs.
- Throughput: events/s from the first call until ``wafermon_client_flush`` returned, i.e.
  until the sidecar acknowledged (stored on disk) every event.
Needs cmake, a C compiler, libcurl4-openssl-dev and libcjson-dev, and wafermon-hosts with
wafermon-backend-filesystem installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hosts import run_sdk_program

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "sdk-c"
BUILD = SDK / "build"


def build() -> Path:
    """The benchmark program, configured and built (Release flags come from the build type)."""
    subprocess.run(
        ["cmake", "-S", str(SDK), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        ["cmake", "--build", str(BUILD), "-j2", "--target", "wafermon-c-bench"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return BUILD / "wafermon-c-bench"


def run(quick: bool) -> dict[str, object]:
    program = build()
    calls, rounds, events = (20_000, 3, 50_000) if quick else (100_000, 5, 300_000)
    argv = [str(program), "--calls", str(calls), "--rounds", str(rounds)]
    figures = run_sdk_program(
        [*argv, "--throughput-events", str(events)],
        "c_sdk",
        env={"WAFERMON_QUEUE_SIZE": str(2 * calls + 10)},
    )
    return {
        "c_sdk_caller_cost": figures["caller_cost"],
        "c_sdk_throughput": figures["throughput"],
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
