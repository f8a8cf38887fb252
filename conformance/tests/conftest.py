"""Fixtures for the runner's own tests (the conformance scenarios themselves run via nox)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def no_wafermon_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WAFERMON_* variable of the shell leaks into a driver."""
    for name in list(os.environ):
        if name.startswith("WAFERMON_"):
            monkeypatch.delenv(name)
