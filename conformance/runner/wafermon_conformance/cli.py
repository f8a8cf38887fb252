"""``python -m wafermon_conformance``: build each driver, run every scenario, print the matrix.

Exit status: 0 when every language ran and every cell matches its known-failures list; 1 on
an unexpected failure, a listed failure that now passes, a stale list entry, or a language
whose driver is missing, does not build or does not start; 2 on a usage error or a malformed
scenario or registry. Results go to ``--results`` (conformance/results/, git-ignored) as
results.json and results.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from . import known_failures, languages, paths, scenarios
from .driver import DriverFailure, DriverProcess, driver_env
from .engine import Outcome, run_scenario
from .known_failures import NOT_RUN


@attrs.define
class LanguageRun:
    """What happened for one language: why it could not run, or each scenario's outcome."""

    name: str
    problem: str | None = None  # missing driver, failed build, failed start
    hello: dict[str, Any] = attrs.Factory(dict)
    outcomes: dict[str, Outcome] = attrs.Factory(dict)
    listed: dict[str, known_failures.Entry] = attrs.Factory(dict)

    def passed(self, scenario: str) -> bool | None:
        outcome = self.outcomes.get(scenario)
        return None if outcome is None else outcome.passed

    def verdict(self, scenario: str) -> str:
        return known_failures.verdict(self.passed(scenario), scenario in self.listed)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wafermon_conformance",
        description="Run the wafermon conformance scenarios through each language's driver.",
    )
    parser.add_argument(
        "--lang",
        action="append",
        default=[],
        help="language from conformance/languages.toml (repeat or comma-separate; default all)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="scenario name or glob (repeatable; default all)",
    )
    parser.add_argument("--no-build", action="store_true", help="skip the build commands")
    parser.add_argument(
        "--update-known-failures",
        action="store_true",
        help="rewrite known-failures/<lang>.txt from this run's results",
    )
    parser.add_argument("--results", type=Path, default=paths.RESULTS, help="results folder")
    parser.add_argument("--scenarios-dir", type=Path, default=paths.SCENARIOS)
    parser.add_argument("--languages-file", type=Path, default=paths.LANGUAGES)
    parser.add_argument("--known-failures-dir", type=Path, default=paths.KNOWN_FAILURES)
    parser.add_argument("--keep", action="store_true", help="keep each scenario's work folder")
    parser.add_argument("--list", action="store_true", help="list languages and scenarios")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print the driver log of failing scenarios"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        registry = languages.load(args.languages_file)
        every = scenarios.load_all(args.scenarios_dir)
    except (languages.RegistryError, scenarios.ScenarioError) as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    wanted = [n.strip() for item in args.lang for n in item.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in registry]
    if unknown:
        print(
            f"conformance: unknown language {unknown[0]!r}; {args.languages_file} has "
            f"{', '.join(registry)}",
            file=sys.stderr,
        )
        return 2
    chosen = [registry[n] for n in (wanted or list(registry))]
    selected = [
        s
        for s in every
        if not args.scenario or any(fnmatch.fnmatch(s.name, p) for p in args.scenario)
    ]
    if not selected:
        print(f"conformance: no scenario matches {args.scenario}", file=sys.stderr)
        return 2
    if args.list:
        print("languages:", ", ".join(registry))
        for scenario in every:
            print(f"{scenario.name:48} {scenario.data['description']}")
        return 0

    runs = []
    workdir = Path(tempfile.mkdtemp(prefix="wafermon-conformance-"))
    try:
        for language in chosen:
            runs.append(run_language(language, selected, workdir, args))
    finally:
        if args.keep:
            print(f"conformance: work folders kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    names = [s.name for s in selected]
    all_names = [s.name for s in every]
    print_matrix(runs, names)
    write_results(runs, names, args.results)
    return finish(runs, names, all_names, args)


def run_language(
    language: languages.Language,
    selected: list[scenarios.Scenario],
    workdir: Path,
    args: argparse.Namespace,
) -> LanguageRun:
    run = LanguageRun(
        language.name, listed=known_failures.read(language.name, args.known_failures_dir)
    )
    say = _say(language.name)
    if language.build and not args.no_build:
        say(f"building: {'; '.join(' '.join(c) for c in language.build_commands())}")
        why = languages.build(language, args.results / f"{language.name}-build.log")
        if why:
            run.problem = f"the driver does not build: {why}"
            say(run.problem)
            return run
    missing = language.missing_driver()
    if missing:
        hint = "; build it with: " + " && ".join(" ".join(c) for c in language.build_commands())
        run.problem = missing + (hint if language.build else "")
        say(run.problem)
        return run
    driver = start_driver(language, run, say)
    if driver is None:
        return run
    try:
        for scenario in selected:
            outcome = run_scenario(scenario, driver, workdir / language.name)
            run.outcomes[scenario.name] = outcome
            cell = run.verdict(scenario.name)
            say(f"{scenario.name}: {cell} ({outcome.duration_s:.1f}s)")
            for failure in outcome.failures[:8]:
                say(f"    {failure}")
            if args.verbose and not outcome.passed and outcome.log:
                say("    driver log:\n" + _indent(outcome.log[-4000:], 8))
            if outcome.driver_broken:
                driver.kill()
                driver = start_driver(language, run, say)
                if driver is None:
                    break
    finally:
        if driver is not None:
            driver.stop()
    return run


def start_driver(language: languages.Language, run: LanguageRun, say: Any) -> DriverProcess | None:
    driver = DriverProcess(language.driver_command(), paths.REPO, driver_env())
    try:
        hello = driver.start()
    except DriverFailure as exc:
        driver.kill()
        run.problem = f"the driver does not start: {exc}"
        say(run.problem)
        return None
    if hello["language"] != language.name:
        say(f"note: the driver calls itself {hello['language']!r}")
    run.hello = hello
    return driver


def print_matrix(runs: list[LanguageRun], names: list[str]) -> None:
    width = max(len(n) for n in names) + 2
    header = "scenario".ljust(width) + "".join(r.name.ljust(10) for r in runs)
    print("\n" + header)
    print("-" * len(header))
    for name in names:
        print(name.ljust(width) + "".join(r.verdict(name).ljust(10) for r in runs))
    for run in runs:
        counts = _counts(run, names)
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        print(
            f"{run.name}: {summary}" + (f" -- {run.problem.splitlines()[0]}" if run.problem else "")
        )


def _counts(run: LanguageRun, names: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(
        [
            known_failures.PASS,
            known_failures.FAIL,
            known_failures.KNOWN,
            known_failures.FIXED,
            NOT_RUN,
        ],
        0,
    )
    for name in names:
        counts[run.verdict(name)] += 1
    return counts


def write_results(runs: list[LanguageRun], names: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scenarios": names,
        "languages": {
            run.name: {
                "problem": run.problem,
                "hello": run.hello,
                "counts": _counts(run, names),
                "scenarios": {
                    name: {
                        "verdict": run.verdict(name),
                        **(run.outcomes[name].to_json() if name in run.outcomes else {}),
                    }
                    for name in names
                },
            }
            for run in runs
        },
    }
    (folder / "results.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    lines = [
        "# wafermon conformance results",
        "",
        f"Generated {data['generated']}. `pass`: passed; `FAIL`: failed, not listed as known; "
        "`known`: failed, listed in known-failures; `FIXED`: listed but passes now; "
        "`not run`: the driver could not run.",
        "",
        "| scenario | " + " | ".join(r.name for r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    lines += [f"| {n} | " + " | ".join(r.verdict(n) for r in runs) + " |" for n in names]
    for run in runs:
        if run.problem:
            lines += ["", f"**{run.name}**: {run.problem}"]
        failing = [n for n in names if n in run.outcomes and not run.outcomes[n].passed]
        if failing:
            lines += ["", f"## {run.name}: failures", ""]
            for name in failing:
                lines.append(f"- `{name}`")
                lines += [f"  - {f}" for f in run.outcomes[name].failures[:10]]
    (folder / "results.md").write_text("\n".join(lines) + "\n")
    print(f"\nresults: {folder / 'results.json'}, {folder / 'results.md'}")


def finish(
    runs: list[LanguageRun], names: list[str], all_names: list[str], args: argparse.Namespace
) -> int:
    problems = []
    for run in runs:
        if run.problem:
            problems.append(f"{run.name}: could not run: {run.problem.splitlines()[0]}")
        for name in names:
            cell = run.verdict(name)
            if cell == known_failures.FAIL:
                problems.append(f"{run.name}: {name} failed and is not a known failure")
            elif cell == known_failures.FIXED:
                problems.append(f"{run.name}: {name} passes but is listed as a known failure")
        for name in known_failures.stale(run.listed, all_names):
            problems.append(f"{run.name}: known-failures lists {name!r}, which is no scenario")
    if args.update_known_failures:
        for run in runs:
            if run.problem:
                print(f"{run.name}: not updating its known failures: it did not run")
                continue
            results = {name: run.passed(name) for name in names}
            path = known_failures.write(run.name, results, all_names, args.known_failures_dir)
            print(f"{run.name}: wrote {path}")
        problems = [p for p in problems if "could not run" in p]
    if not problems:
        print("conformance: OK")
        return 0
    print("\nconformance: FAILED")
    for problem in problems:
        print(f"  {problem}")
    if any("known failure" in p or "no scenario" in p for p in problems):
        langs = ",".join(r.name for r in runs if not r.problem)
        print(
            "\nIf these results are right, accept them as the known failures with:\n"
            f"  nox -s conformance -- --lang {langs} --update-known-failures\n"
            f"  (or: python -m wafermon_conformance --lang {langs} --update-known-failures)"
        )
    return 1


def _say(language: str) -> Any:
    def say(message: str) -> None:
        print(f"[{language} {time.strftime('%H:%M:%S')}] {message}", flush=True)

    return say


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())
