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
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hosts import host

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
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-java-") as tmp:
        work = Path(tmp)
        config = (
            "site_id: fab1\n"
            f"sidecar: {{spool: {{dir: '{work / 'sidecar-spool'}'}}}}\n"
            "backends: [{name: archive, type: filesystem, config: "
            f"{{root: '{work / 'events'}'}}}}]\n"
        )
        with host("sidecar", config, work) as sidecar:
            env = {k: v for k, v in os.environ.items() if not k.startswith("WAFERMON_")}
            env.update(
                WAFERMON_SIDECAR_URL=sidecar,
                WAFERMON_SITE_ID="fab1",
                WAFERMON_SPOOL_DIR=str(work / "sdk-spool"),
            )
            print("bench java_sdk ...", file=sys.stderr, flush=True)
            done = subprocess.run(
                [
                    "java",
                    "-cp",
                    str(jar),
                    str(SDK / "bench" / "JavaBench.java"),
                    "--calls",
                    str(calls),
                    "--rounds",
                    str(rounds),
                    "--throughput-events",
                    str(events),
                ],
                env=env,
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            )
    figures = json.loads(done.stdout)
    return {
        "java_sdk_caller_cost": figures["caller_cost"],
        "java_sdk_throughput": figures["throughput"],
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
