"""Perl SDK benchmarks. ``run(quick)`` is called by bench/run.py like the other suites.

Starts a real ``wafermon sidecar`` (filesystem backend, fsync on) with ``hosts.host`` and runs
sdk-perl/bench/bench.pl against it (perl from the system, the SDK from the checkout):

- Caller cost per event of ``$job->tick`` and ``emit_event``, median over rounds, as ratios to
  a baseline measured in the same run by the same program: appending the same JSON line to a
  local file (``syswrite`` per line on an O_APPEND file; also ``print`` through PerlIO's
  buffer), in wall time and in the process's CPU time (steadier on a loaded machine). In
  sidecar mode the caller's work per batch is one append to the spool; the replayer process
  sends it (and competes for the same cores while the caller runs).
- Throughput: events/s from the first call until ``close`` returned true, i.e. until the
  sidecar acknowledged every event; also as a ratio to the syswrite baseline's rate.
Needs perl (Debian's libjson-xs-perl and libcrypt-urandom-perl make it faster) and
wafermon-hosts with wafermon-backend-filesystem installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hosts import run_sdk_program

PROGRAM = Path(__file__).resolve().parent.parent / "sdk-perl" / "bench" / "bench.pl"


def run(quick: bool) -> dict[str, object]:
    calls, rounds, events = (10_000, 3, 20_000) if quick else (40_000, 5, 100_000)
    argv = ["perl", str(PROGRAM), "--calls", str(calls), "--rounds", str(rounds)]
    figures = run_sdk_program([*argv, "--events", str(events)], "perl_sdk")
    return {
        "perl_sdk_caller_cost": figures["caller_cost"],
        "perl_sdk_throughput": figures["throughput"],
    }


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
