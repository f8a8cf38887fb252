"""Perl SDK benchmarks. ``run(quick)`` is called by bench/run.py like the other suites.

Starts a real ``wafermon sidecar`` (filesystem backend, fsync on) with ``hosts.host`` and runs
sdk-perl/bench/bench.pl against it (perl from the system, the SDK from the checkout):

- Caller cost per event of ``$job->tick`` and ``emit_event``, median over rounds, as ratios to
  a baseline measured in the same run by the same program: appending the same JSON line to a
  local file (``syswrite`` per line on an O_APPEND file; also ``print`` through PerlIO's
  buffer). The SDK has no sender thread, so the caller's figure includes its own batched
  POSTs to the sidecar, amortized over ``batch_size`` events.
- Throughput: events/s from the first call until ``close`` returned true, i.e. until the
  sidecar acknowledged every event; also as a ratio to the syswrite baseline's rate.
Needs perl (Debian's libjson-xs-perl and libcrypt-urandom-perl make it faster) and
wafermon-hosts with wafermon-backend-filesystem installed.
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
PROGRAM = ROOT / "sdk-perl" / "bench" / "bench.pl"


def run(quick: bool) -> dict[str, object]:
    calls, rounds, events = (5_000, 3, 20_000) if quick else (20_000, 5, 100_000)
    with tempfile.TemporaryDirectory(prefix="wafermon-bench-perl-") as tmp:
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
            print("bench perl_sdk ...", file=sys.stderr, flush=True)
            done = subprocess.run(
                [
                    "perl",
                    str(PROGRAM),
                    "--calls",
                    str(calls),
                    "--rounds",
                    str(rounds),
                    "--events",
                    str(events),
                ],
                env=env,
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            )
    figures = json.loads(done.stdout)
    return {
        "perl_sdk_caller_cost": figures["caller_cost"],
        "perl_sdk_throughput": figures["throughput"],
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
