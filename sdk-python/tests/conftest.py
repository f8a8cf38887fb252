"""Fixtures for the SDK tests; shared helpers live in sdk_helpers (not imported as conftest).

Every test gets a clean SDK environment: no WAFERMON_* variable from the shell leaks in (the
tests set what they need), the spool goes under tmp_path, and the default client is closed
afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import wafermon_sdk


@pytest.fixture(autouse=True)
def clean_sdk_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("WAFERMON_") and name != "WAFERMON_TEST_PG_URL":
            monkeypatch.delenv(name)
    for name in ("ECS_CONTAINER_METADATA_URI_V4", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    spool = tmp_path / "sdk-spool"
    monkeypatch.setenv("WAFERMON_SPOOL_DIR", str(spool))
    yield spool
    wafermon_sdk.close(timeout=5)
