"""Java SDK benchmarks. ``run(quick)`` is called by bench/run.py like the other suites.

Builds the SDK jar with Maven (sdk-java/, tests skipped), starts a real ``wafermon sidecar``
(filesystem backend) with the ``host`` helper, and runs sdk-java/bench/JavaBench.java against it:

- Caller-thread cost per event of ``Monitored.progress`` and ``emitEvent``, median and p99 ns,
  each call timed on its own after a warm-up round while the sender delivers, as ratios to
  ``ArrayBlockingQueue.offer`` of a record with the same fields, timed the same way in the same
  run. Target: median <= 2 µs.
- Throughput: events/s until ``flush()`` returned (the sidecar acknowledged every event), as a
  ratio to the same events POSTed by a plain java.net.http loop, 500 per request.

Needs a JDK 17 and Maven (scripts/test installs them), and wafermon-hosts with
wafermon-backend-filesystem installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hosts import run_sdk_program

ROOT = Path(__file__).resolve().parent.parent
SDK = ROOT / "sdk-java"


def build() -> Path:
    """The SDK jar (no tests, no javadoc: the sdk_java session checks those)."""
    subprocess.run(
        [
            "mvn",
            "-B",
            "-ntp",
            "-q",
            "-f",
            str(SDK / "pom.xml"),
            "-DskipTests",
            "-Dmaven.javadoc.skip=true",
            "-Dmaven.source.skip=true",
            "package",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return SDK / "target" / "wafermon-sdk-0.1.0.jar"


def run(quick: bool) -> dict[str, object]:
    jar = build()
    calls, rounds, events = (20_000, 3, 20_000) if quick else (100_000, 5, 50_000)
    bench = str(SDK / "bench" / "JavaBench.java")
    argv = ["java", "-cp", str(jar), bench, "--calls", str(calls), "--rounds", str(rounds)]
    figures = run_sdk_program([*argv, "--throughput-events", str(events)], "java_sdk")
    return {
        "java_sdk_caller_cost": figures["caller_cost"],
        "java_sdk_throughput": figures["throughput"],
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
