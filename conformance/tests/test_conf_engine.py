"""The runner judges the wire, not the driver: a driver with one flaw fails for that flaw.

``rogue_driver.py`` speaks the protocol but posts hand-made events; ROGUE_FLAW picks the one
thing it does wrong. With no flaw it passes, so each failure below is caused by its flaw.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wafermon_conformance import paths, scenarios
from wafermon_conformance.driver import DriverProcess, driver_env
from wafermon_conformance.engine import run_scenario

ROGUE = Path(__file__).with_name("rogue_driver.py")


def run(flaw: str, scenario: str, tmp_path: Path) -> list[str]:
    env = {**driver_env(), "ROGUE_FLAW": flaw}
    driver = DriverProcess([sys.executable, str(ROGUE)], paths.REPO, env)
    driver.start()
    try:
        loaded = scenarios.load_file(paths.SCENARIOS / f"{scenario}.json")
        return run_scenario(loaded, driver, tmp_path).failures
    finally:
        driver.stop()


@pytest.mark.parametrize("scenario", ["job_started_finished", "sidecar_503_retry_after"])
def test_the_rogue_driver_without_a_flaw_passes(scenario, tmp_path):
    assert run("none", scenario, tmp_path) == []


@pytest.mark.parametrize(
    ("flaw", "scenario", "expected"),
    [
        ("duplicate", "job_started_finished", "reached the wire 2 times (expected once)"),
        ("wrong_pid", "job_started_finished", "$.source.pid: expected $driver_pid"),
        ("uuid_v1", "job_started_finished", "$.event_id: expected random_uuid"),
        ("lose_finished", "job_started_finished", "expected event 1 (finished of"),
        ("reorder", "job_started_finished", "the first event on the wire is finished"),
        ("wrong_content_type", "job_started_finished", "Content-Type is application/json"),
        ("ignore_retry_after", "sidecar_503_retry_after", "it must wait at least that long"),
    ],
)
def test_each_flaw_is_caught(flaw, scenario, expected, tmp_path):
    failures = run(flaw, scenario, tmp_path)
    assert any(expected in f for f in failures), failures
