"""Two versions of the sidecar side by side: what a change costs per single-event POST.

    python bench/ab_sidecar.py REF                   # commit REF against the working tree
    python bench/ab_sidecar.py REF --rounds 8 --seconds 4
    python bench/ab_sidecar.py --without observer    # what a piece costs, by its absence

A change worth a few microseconds a request is smaller than the drift between two runs on a
shared machine, so one run before and one after cannot show it. Here both versions run at
once, each a real ``wafermon sidecar`` with a filesystem backend, and take turns under the
same wrk load (16 connections, a fresh event id a request) in short windows; the medians over
the rounds are compared. REF runs from a git worktree put first on PYTHONPATH, so its core,
hosts and plugins are imported from there instead of from the installed working tree. A bare
Starlette app on the same server takes its turn too, as in ``sidecar_bench``.

With ``--without PIECE[,PIECE]`` the other sidecar is the working tree with those pieces
taken out at its start-up (a ``sitecustomize`` on its PYTHONPATH patches them to do nothing;
see ``KNOCKOUTS``): a measurement of what they cost, never a way to run a sidecar.

Reported for each: requests/s, and the CPU a request of the event-loop thread (the one that
serves requests; the spool writer's fsyncs and the backends' threads are not in it) and of the
whole process, from /proc. Needs wrk. Writes the figures to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from sidecar_bench import BARE_APP, CONNECTIONS, cpu_s, process, sidecar, single_lua, wrk_cpu

from hosts import free_port

INGEST = "/v1/ingest/events"
ROOT = Path(__file__).resolve().parent.parent

#: What ``--without`` can take out of a sidecar: the code its ``sitecustomize`` runs.
KNOCKOUTS = {
    # the request id, access line, metrics and span, all at once
    "observer": """
import wafermon_hosts.common.observe as observe
async def _through(self, scope, receive, send):
    await self.app(scope, receive, send)
observe.RequestObserver.__call__ = _through
""",
    "access-line": """
import wafermon_hosts.common.observe as observe
observe.log_request = lambda fields: None
""",
    "metrics": """
import wafermon_hosts.common.metrics as metrics
metrics.HostMetrics.observe_request = lambda *args: None
""",
}


def sources(tree: Path) -> list[str]:
    """The source folders of a checkout's Python packages (core, hosts, plugins)."""
    plugins = sorted(str(p) for p in (tree / "plugins").glob("*/src"))
    return [str(tree / "core" / "src"), str(tree / "hosts" / "wafermon-hosts" / "src"), *plugins]


def measure(pid: int, url: str, script: Path, seconds: float) -> dict[str, float]:
    before = cpu_s(pid, main_thread=True)
    run = wrk_cpu(pid, url + INGEST, script, seconds, CONNECTIONS)
    loop_s = cpu_s(pid, main_thread=True) - before
    run["loop_cpu_us_per_request"] = loop_s / (run["rps"] * seconds) * 1e6
    return run


def compare(
    work: Path, ref: str, pythonpath: list[str], rounds: int, seconds: float
) -> dict[str, object]:
    """``ref`` (its name; ``pythonpath`` first on its sidecar's PYTHONPATH) against the working
    tree, with a bare app beside them."""
    script = single_lua(work)
    (work / "bare.py").write_text(BARE_APP)
    bare_port = free_port()
    bare = ([sys.executable, str(work / "bare.py"), f"127.0.0.1:{bare_port}"], bare_port)

    def archive(tag: str) -> list[dict]:
        return [{"name": "archive", "type": "filesystem", "config": {"root": str(work / tag)}}]

    ref_args, ref_url, ref_log = sidecar(work, archive("fs-ref"), "ref")
    new_args, new_url, new_log = sidecar(work, archive("fs-new"), "new")
    ref_env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    names = ["bare", ref, "working tree"]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with (
        process(bare[0], f"http://127.0.0.1:{bare[1]}", work / "bare.log", probe="/") as bare_pid,
        process(ref_args, ref_url, ref_log, env=ref_env) as ref_pid,
        process(new_args, new_url, new_log) as new_pid,
    ):
        servers = [
            (bare_pid, f"http://127.0.0.1:{bare[1]}"),
            (ref_pid, ref_url),
            (new_pid, new_url),
        ]
        for pid, url in servers:  # warm-up
            measure(pid, url, script, 2)
        for k in range(rounds):
            for name, (pid, url) in zip(names, servers, strict=True):
                runs[name].append(measure(pid, url, script, seconds))
            print(f"  round {k + 1} of {rounds}", file=sys.stderr, flush=True)
    medians = {
        name: {
            key: round(statistics.median(r[key] for r in rows), 1)
            for key in ("rps", "loop_cpu_us_per_request", "cpu_us_per_request", "p99_ms")
        }
        for name, rows in runs.items()
    }
    for figures in medians.values():
        figures["ratio_to_bare"] = round(figures["rps"] / medians["bare"]["rps"], 3)
    old, new = medians[ref], medians["working tree"]
    return {
        "what": f"single-event POST {INGEST}, wrk {CONNECTIONS} connections, {rounds} rounds "
        f"of {seconds:g} s taking turns; medians",
        "versions": medians,
        "loop_cpu_change_us": round(
            new["loop_cpu_us_per_request"] - old["loop_cpu_us_per_request"], 1
        ),
        "requests_per_s_ratio": round(new["rps"] / old["rps"], 3),
        "non_2xx": {name: sum(r["non_2xx"] for r in rows) for name, rows in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "ref", nargs="?", help="the commit, branch or tag to compare the working tree with"
    )
    parser.add_argument(
        "--without",
        help=f"compare with the working tree without these pieces: {', '.join(KNOCKOUTS)}",
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", default="bench-ab.json")
    args = parser.parse_args()
    if (args.ref is None) == (args.without is None):
        parser.error("give either REF or --without")
    with tempfile.TemporaryDirectory(prefix="wafermon-ab-") as tmp:
        work = Path(tmp)
        if args.without is not None:
            pieces = args.without.split(",")
            if unknown := [p for p in pieces if p not in KNOCKOUTS]:
                parser.error(f"--without: unknown {unknown}; known: {', '.join(KNOCKOUTS)}")
            patch = work / "knockout"
            patch.mkdir()
            (patch / "sitecustomize.py").write_text("".join(KNOCKOUTS[p] for p in pieces))
            name = "without " + ",".join(pieces)
            result = compare(work, name, [str(patch)], args.rounds, args.seconds)
        else:
            name = args.ref
            tree = work / "tree"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.ref],
                check=True,
                capture_output=True,
            )
            try:
                result = compare(work, name, sources(tree), args.rounds, args.seconds)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)])
    for version, figures in result["versions"].items():
        print(
            f"{version:>24}: {figures['rps']:8,.0f} requests/s ({figures['ratio_to_bare']:.3f} of "
            f"bare), event loop {figures['loop_cpu_us_per_request']:6.1f} us a request, process "
            f"{figures['cpu_us_per_request']:6.1f} us"
        )
    print(
        f"working tree against {name}: event loop {result['loop_cpu_change_us']:+.1f} us a "
        f"request, requests/s x{result['requests_per_s_ratio']}"
    )
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
