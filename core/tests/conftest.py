"""Shared fixtures: valid events as dicts and objects, and a Plugins with no entry points."""

from __future__ import annotations

import copy
import os
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import settings

from wafermon.plugins import Plugins

VALID: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
    "kind": "progress",
    "time": "2026-11-28T09:30:00.123456Z",
    "site_id": "fab1",
    "app": {
        "name": "wafer-process",
        "version": "2.1.0",
        "app_id": "0d6e7f80-9a1b-4c2d-8e3f-405162738495",
    },
    "entity": {
        "type": "subjob",
        "id": "s-1",
        "parent_id": "j-1",
        "business_key": "batch-12345",
        "sub_key": "wafer-7",
    },
    "metrics": {
        "duration_s": 1.5,
        "cpu_user_s": 1.25,
        "cpu_system_s": 0.125,
        "mem_max_mb": 120.5,
        "progress": 0.5,
    },
    "metadata": {"priority": "high", "customer": "ACME", "nested": {"tool": ["etch", 7]}},
    "source": {"host": "node1", "pid": 4242, "sdk": "python", "sdk_version": "0.1.0"},
}


@pytest.fixture
def valid() -> dict[str, Any]:
    """A fresh deep copy of a valid event with every field set."""
    event = copy.deepcopy(VALID)
    event["event_id"] = str(uuid4())
    return event


@pytest.fixture
def plugins() -> Plugins:
    """A plugin manager that loaded nothing from entry points; tests register what they need."""
    return Plugins()


# No per-example deadline: shared CI machines are noisy. CI also derandomizes, so a failure
# there reproduces locally with HYPOTHESIS_PROFILE=ci.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
