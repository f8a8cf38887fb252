"""Where the suite's files are: the checkout's conformance/ folder (the runner runs from it)."""

from __future__ import annotations

from pathlib import Path

CONFORMANCE = Path(__file__).resolve().parents[2]
REPO = CONFORMANCE.parent
SCENARIOS = CONFORMANCE / "scenarios"
SCENARIO_SCHEMA = CONFORMANCE / "scenario.schema.json"
LANGUAGES = CONFORMANCE / "languages.toml"
KNOWN_FAILURES = CONFORMANCE / "known-failures"
RESULTS = CONFORMANCE / "results"
