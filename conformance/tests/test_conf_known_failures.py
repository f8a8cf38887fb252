"""Known failures: an unexpected failure fails the run, and so does a listed one that passes."""

from __future__ import annotations

import argparse

import pytest

from wafermon_conformance import known_failures
from wafermon_conformance.cli import LanguageRun, finish
from wafermon_conformance.engine import Outcome

NAMES = ["alpha", "beta", "gamma"]


def language(
    results: dict[str, bool], listed: list[str], problem: str | None = None
) -> LanguageRun:
    run = LanguageRun("c", problem=problem)
    for name, passed in results.items():
        run.outcomes[name] = Outcome(name, failures=[] if passed else ["broken"])
    run.listed = {n: known_failures.Entry(n) for n in listed}
    return run


def verdict(**kwargs) -> int:
    namespace = argparse.Namespace(update_known_failures=False, known_failures_dir=None)
    return finish([language(**kwargs)], NAMES, NAMES, namespace)


@pytest.mark.parametrize(
    ("passed", "listed", "cell"),
    [
        (True, False, "pass"),
        (False, False, "FAIL"),
        (False, True, "known"),
        (True, True, "FIXED"),
        (None, False, "not run"),
        (None, True, "not run"),
    ],
)
def test_cells(passed, listed, cell):
    assert known_failures.verdict(passed, listed) == cell


def test_all_passing_and_nothing_listed_is_ok(capsys):
    assert verdict(results=dict.fromkeys(NAMES, True), listed=[]) == 0
    assert "conformance: OK" in capsys.readouterr().out


def test_a_listed_failure_that_still_fails_is_ok():
    assert verdict(results={"alpha": True, "beta": False, "gamma": True}, listed=["beta"]) == 0


def test_an_unexpected_failure_fails_the_run_and_prints_the_update_command(capsys):
    assert verdict(results={"alpha": True, "beta": False, "gamma": True}, listed=[]) == 1
    out = capsys.readouterr().out
    assert "c: beta failed and is not a known failure" in out
    assert "nox -s conformance -- --lang c --update-known-failures" in out


def test_a_listed_failure_that_now_passes_fails_the_run(capsys):
    assert verdict(results=dict.fromkeys(NAMES, True), listed=["gamma"]) == 1
    out = capsys.readouterr().out
    assert "c: gamma passes but is listed as a known failure" in out
    assert "--update-known-failures" in out


def test_a_listed_name_that_is_no_scenario_fails_the_run(capsys):
    assert verdict(results=dict.fromkeys(NAMES, True), listed=["delta"]) == 1
    assert "known-failures lists 'delta', which is no scenario" in capsys.readouterr().out


def test_a_language_that_could_not_run_fails_the_run(capsys):
    assert verdict(results={}, listed=NAMES, problem="the driver x does not exist") == 1
    assert "c: could not run: the driver x does not exist" in capsys.readouterr().out


def test_read_and_write_keep_comments_and_entries_not_run(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("# header\nbeta  # flush returns early, issue 12\ngamma\ndelta\n")
    assert set(known_failures.read("c", tmp_path)) == {"beta", "gamma", "delta"}
    assert known_failures.read("c", tmp_path)["beta"].comment == "flush returns early, issue 12"
    # alpha now fails, beta still fails, gamma was not run this time; delta is no scenario
    known_failures.write("c", {"alpha": False, "beta": False}, NAMES, tmp_path)
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert lines == ["alpha", "beta  # flush returns early, issue 12", "gamma"]
    known_failures.write("c", dict.fromkeys(NAMES, True), NAMES, tmp_path)
    assert known_failures.read("c", tmp_path) == {}
